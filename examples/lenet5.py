"""LeNet-5 (LeCun et al., 1998) in plain PyTorch, with ReLU and max pooling as it is built today,
for scikit-learn's digits scaled to 32 x 32.

    conv 5x5, 6, padding 0 (32 -> 28) - ReLU - max pool 2 (14)
    conv 5x5, 16, padding 0 (14 -> 10) - ReLU - max pool 2 (5)
    flatten (16 x 5 x 5 = 400) - linear 120 - ReLU - linear 84 - ReLU - linear 10

Nothing here imports codesign. Run the whole flow on it with

    codesign flow --model examples/lenet5.py:build --calib examples/lenet5.py:calib

``build`` trains it for a few seconds (seeded: the same weights every time); ``calib`` returns
held-out digits and their labels.
"""

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


class LeNet5(nn.Module):
    def __init__(self, classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, classes)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


def _digits():
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.from_numpy(d.images.astype(np.float32) / 16.0)[:, None]
    x = x.repeat_interleave(4, dim=2).repeat_interleave(4, dim=3)  # 32 x 32
    y = torch.from_numpy(d.target.astype(np.int64))
    perm = torch.from_numpy(np.random.default_rng(5).permutation(len(y)))
    return x[perm], y[perm]


def build(epochs: int = 8) -> nn.Module:
    torch.manual_seed(0)
    x, y = _digits()
    x, y = x[:1300], y[:1300]
    model = LeNet5()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
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
