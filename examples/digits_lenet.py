"""A user's own network, in plain PyTorch: a small LeNet-style CNN for scikit-learn's digits.

Nothing here imports codesign. Run the whole flow on it with

    codesign flow --model examples/digits_lenet.py:build --calib examples/digits_lenet.py:calib

``build`` returns the trained module (it trains for a few seconds on first use, seeded, so the
weights are the same every time); ``calib`` returns held-out inputs and their labels, which
codesign uses to calibrate the quantizers and to measure accuracy.
"""

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


class LeNetDigits(nn.Module):
    """conv3x3(8)-BN-ReLU, maxpool, conv3x3(16)-BN-ReLU, maxpool, conv1x1(32)-ReLU, residual
    conv3x3(32)-BN + add-ReLU, global average pool, linear 10."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(16)
        self.conv3 = nn.Conv2d(16, 32, 1)
        self.conv4 = nn.Conv2d(32, 32, 3, padding=1, bias=False)
        self.bn4 = nn.BatchNorm2d(32)
        self.pool = nn.MaxPool2d(2)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(32, 10)

    def forward(self, x):
        x = self.pool(F.relu(self.bn1(self.conv1(x))))
        x = self.pool(F.relu(self.bn2(self.conv2(x))))
        x = F.relu(self.conv3(x))
        x = F.relu(x + self.bn4(self.conv4(x)))
        return self.fc(torch.flatten(self.gap(x), 1))


def _digits():
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.from_numpy(d.images.astype(np.float32) / 16.0)[:, None]
    x = x.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)  # 16 x 16
    y = torch.from_numpy(d.target.astype(np.int64))
    perm = torch.from_numpy(np.random.default_rng(7).permutation(len(y)))
    return x[perm], y[perm]


def build(epochs: int = 12) -> nn.Module:
    torch.manual_seed(0)
    x, y = _digits()
    x, y = x[:1300], y[:1300]
    model = LeNetDigits()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(0)
    model.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(y), generator=gen).split(64):
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval()


def calib():
    x, y = _digits()
    return x[1300:].numpy(), y[1300:].numpy()
