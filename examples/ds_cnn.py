"""DS-CNN for keyword spotting (Zhang et al., "Hello Edge", 2017; the MLPerf Tiny KWS model), in
plain PyTorch from its published definition.

Input: 49 x 10 MFCC features (1 channel). Stem: conv 10x4, 64 filters, stride 2, TensorFlow
"same" padding (zero padding 4 above, 5 below, 1 left and right: 49 x 10 -> 25 x 5), BatchNorm,
ReLU. Then four depthwise-separable blocks: depthwise 3x3 + BatchNorm + ReLU, pointwise 1x1 to 64
+ BatchNorm + ReLU. Global average pool (25 x 5), dropout, linear 12.

Nothing here imports codesign. Weights are seeded (throughput and resources do not depend on
them; no speech data ships in a registry package); ``calib`` gives seeded MFCC-like inputs, and
"accuracy" is then the agreement of the quantized network with this float module.

    codesign flow --model examples/ds_cnn.py:build --calib examples/ds_cnn.py:calib
"""

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


class DSCNN(nn.Module):
    def __init__(self, classes: int = 12, filters: int = 64, blocks: int = 4):
        super().__init__()
        self.stem = nn.Conv2d(1, filters, (10, 4), stride=2, bias=False)
        self.stem_bn = nn.BatchNorm2d(filters)
        layers = []
        for _ in range(blocks):
            layers += [nn.Conv2d(filters, filters, 3, padding=1, groups=filters, bias=False),
                       nn.BatchNorm2d(filters), nn.ReLU(),
                       nn.Conv2d(filters, filters, 1, bias=False), nn.BatchNorm2d(filters),
                       nn.ReLU()]
        self.blocks = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.drop = nn.Dropout(0.4)
        self.fc = nn.Linear(filters, classes)

    def forward(self, x):
        x = F.pad(x, (1, 1, 4, 5))  # TensorFlow "same" for a 10x4 kernel at stride 2 on 49x10
        x = F.relu(self.stem_bn(self.stem(x)))
        x = self.blocks(x)
        return self.fc(self.drop(torch.flatten(self.pool(x), 1)))


def build() -> nn.Module:
    torch.manual_seed(0)
    m = DSCNN()
    with torch.no_grad():  # trained-looking BatchNorm statistics
        for mod in m.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.1, 0.1)
                mod.running_var.uniform_(0.5, 1.5)
    return m.eval()


def calib(n: int = 96):
    """Seeded MFCC-like inputs ``[n, 1, 49, 10]``: smooth over time, decaying over the
    coefficients."""
    rng = np.random.default_rng(3)
    x = rng.normal(0, 1, (n, 1, 49, 10)).cumsum(axis=2) / 4
    x *= np.exp(-np.arange(10) / 4)[None, None, None, :]
    return x.astype(np.float32)
