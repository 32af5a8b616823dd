"""The MLPerf Tiny anomaly-detection autoencoder (ToyADMOS / DCASE 2020 task 2), in plain PyTorch.

A fully connected network on one 640-value vector (5 frames x 128 log-mel bins): four dense
layers of 128, a bottleneck of 8, four dense layers of 128, each followed by BatchNorm and ReLU,
then a dense reconstruction of 640 values (no activation). No convolution and no spatial map: the
flow runs it as a single-site stream whose 640 channels pass through linear layers (an MLP).

Throughput and resources do not depend on the weights, so ``build`` returns the network with seeded
random ones (BatchNorm statistics included) and ``calib`` seeded random log-mel vectors.

    codesign flow --model examples/autoencoder.py:build --calib examples/autoencoder.py:calib \\
        --device XC7Z020 --out runs/autoencoder
"""

import numpy as np
import torch
from torch import nn

INPUT = 640
HIDDEN = 128
BOTTLENECK = 8


def _dense(i, o):
    return [nn.Linear(i, o), nn.BatchNorm1d(o), nn.ReLU()]


class AutoEncoder(nn.Module):
    def __init__(self, n_in: int = INPUT, hidden: int = HIDDEN, bottleneck: int = BOTTLENECK):
        super().__init__()
        layers = _dense(n_in, hidden)
        for _ in range(3):
            layers += _dense(hidden, hidden)
        layers += _dense(hidden, bottleneck) + _dense(bottleneck, hidden)
        for _ in range(3):
            layers += _dense(hidden, hidden)
        layers += [nn.Linear(hidden, n_in)]
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)


def build() -> nn.Module:
    torch.manual_seed(0)
    model = AutoEncoder()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm1d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    return model.eval()


def calib(n: int = 64):
    rng = np.random.default_rng(0)
    return rng.standard_normal((n, INPUT)).astype(np.float32)
