"""The MLPerf Tiny image-classification ResNet (ResNet-8 for CIFAR-10), in plain PyTorch.

From the published reference (MLPerf Tiny, ``image_classification/keras_model.py``): a 32 x 32 x 3
input; a 3x3 stem of 16 channels with BatchNorm and ReLU; three stages of one basic block each at
16, 32 and 64 channels (3x3 conv, BatchNorm, ReLU, 3x3 conv, BatchNorm, the shortcut added, ReLU),
the second and third with stride 2 and a 1x1 stride-2 convolution as the projection shortcut;
global average pooling; a dense layer of 10. Throughput and resources do not depend on the
weights, so ``build`` returns the network with seeded random ones (BatchNorm statistics
included) and ``calib`` seeded random images.

    codesign flow --model examples/resnet_cifar.py:build --calib examples/resnet_cifar.py:calib \\
        --device XC7Z020 --out runs/resnet8
"""

import numpy as np
import torch
from torch import nn


class BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(c_out)
        # the projection shortcut where the shape changes (1x1, stride 2, no BatchNorm)
        self.shortcut = (nn.Conv2d(c_in, c_out, 1, stride=stride)
                         if stride != 1 or c_in != c_out else nn.Identity())

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return torch.relu(y + self.shortcut(x))


class ResNet8(nn.Module):
    def __init__(self, classes: int = 10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU())
        self.stage1 = BasicBlock(16, 16, 1)
        self.stage2 = BasicBlock(16, 32, 2)
        self.stage3 = BasicBlock(32, 64, 2)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(64, classes)

    def forward(self, x):
        x = self.stage3(self.stage2(self.stage1(self.stem(x))))
        return self.fc(torch.flatten(self.pool(x), 1))


def build() -> nn.Module:
    torch.manual_seed(0)
    model = ResNet8()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    return model.eval()


def calib(n: int = 32):
    rng = np.random.default_rng(0)
    return rng.random((n, 3, 32, 32), dtype=np.float32)
