"""MobileNetV1 (Howard et al., 2017) at width multiplier 0.25, in plain PyTorch.

The MLPerf Tiny visual-wake-words configuration: 96 x 96 x 3 input, 2 classes. Every block is a
depthwise 3x3 conv and a pointwise 1x1 conv, each followed by BatchNorm and ReLU; the stem is a full
3x3 conv with stride 2; then global average pooling and a linear classifier. Throughput and
resources do not depend on the weights, so ``build`` returns the network with seeded random ones
(BatchNorm statistics included); ``calib`` returns seeded random images.

    codesign dse --model examples/mobilenet_v1.py:build --calib examples/mobilenet_v1.py:calib \\
        --device XCZU3EG --out runs/mobilenet
"""

import numpy as np
import torch
from torch import nn

#: (output channels at width 1.0, stride) of the 13 depthwise-separable blocks.
BLOCKS = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1), (512, 1),
          (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1))


def _bn_relu(c):
    return [nn.BatchNorm2d(c), nn.ReLU()]


class MobileNetV1(nn.Module):
    def __init__(self, alpha: float = 0.25, classes: int = 2, in_channels: int = 3):
        super().__init__()
        c = int(32 * alpha)
        layers = [nn.Conv2d(in_channels, c, 3, stride=2, padding=1, bias=False), *_bn_relu(c)]
        for width, stride in BLOCKS:
            out = int(width * alpha)
            layers += [nn.Conv2d(c, c, 3, stride=stride, padding=1, groups=c, bias=False),
                       *_bn_relu(c),
                       nn.Conv2d(c, out, 1, bias=False), *_bn_relu(out)]
            c = out
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c, classes)

    def forward(self, x):
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))


def build() -> nn.Module:
    torch.manual_seed(0)
    model = MobileNetV1()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    return model.eval()


def calib(n: int = 32, size: int = 96):
    rng = np.random.default_rng(0)
    return rng.random((n, 3, size, size), dtype=np.float32)
