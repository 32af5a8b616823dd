"""ESDA's sparse eye-tracking backbone SEE-D, written with this project's sparse layers.

80 x 60 event frames with 3 time bins. A 3x3 stride-2 sparse stem to 24 channels; MobileNetV2
inverted-residual blocks ``[t, c, n, s]`` = [8, 32, 1, 2], [6, 48, 2, 2], [1, 64, 2, 1],
[1, 72, 3, 2], [1, 256, 1, 1] (1x1 expansion by t when t > 1, 3x3 depthwise at stride s, 1x1
projection, a residual add where the stride is 1 and the channels match); a 1x1 conv to 64; global
average pooling. The GRU and the linear head stay on the host. Stride-1 convs are submanifold
(outputs only at active sites), stride-2 ones use the sparse stride-2 rule.

Throughput and resources do not depend on the weights: ``build`` returns seeded random ones (with
BatchNorm statistics); ``calib`` returns 50 ms event windows of the project's synthetic eye
recordings (input density ~0.2). The generator has no finer time bins, so the three input channels
stand in for them: ON counts, OFF counts and their sum.

    codesign dse --model examples/seed_eye.py:build --calib examples/seed_eye.py:calib \\
        --device XCZU9EG --out runs/seed
"""

import torch
from torch import nn

from models.sparse import SparseAdd, SparseConv2d, SparseGlobalAvgPool, SubmanifoldConv2d

#: (expansion t, output channels c, repeats n, first stride s) of the inverted-residual stages.
STAGES = ((8, 32, 1, 2), (6, 48, 2, 2), (1, 64, 2, 1), (1, 72, 3, 2), (1, 256, 1, 1))


class InvertedResidual(nn.Module):
    def __init__(self, cin, cout, t, stride):
        super().__init__()
        hid = cin * t
        self.expand = SubmanifoldConv2d(cin, hid, 1, relu=True, bn=True) if t > 1 else None
        conv = SubmanifoldConv2d if stride == 1 else SparseConv2d
        kw = {} if stride == 1 else {"stride": stride}
        self.dw = conv(hid, hid, 3, groups=hid, relu=True, bn=True, **kw)
        self.project = SubmanifoldConv2d(hid, cout, 1, relu=False, bn=True)
        self.add = SparseAdd(relu=False) if stride == 1 and cin == cout else None

    def forward(self, x):
        y = self.expand(x) if self.expand is not None else x
        y = self.project(self.dw(y))
        return self.add(y, x) if self.add is not None else y


class SEED(nn.Module):
    def __init__(self, in_channels: int = 3):
        super().__init__()
        self.stem = SparseConv2d(in_channels, 24, 3, stride=2, relu=True, bn=True)
        blocks, c = [], 24
        for t, cout, n, s in STAGES:
            for i in range(n):
                blocks.append(InvertedResidual(c, cout, t, s if i == 0 else 1))
                c = cout
        self.blocks = nn.Sequential(*blocks)
        self.head = SubmanifoldConv2d(c, 64, 1, relu=True, bn=True)
        self.pool = SparseGlobalAvgPool()

    def forward(self, x):
        return self.pool(self.head(self.blocks(self.stem(x))))


def build() -> nn.Module:
    torch.manual_seed(0)
    model = SEED()
    with torch.no_grad():
        for m in model.modules():
            bn = getattr(m, "bn", None)
            if isinstance(bn, nn.BatchNorm1d):
                bn.running_mean.uniform_(-0.1, 0.1)
                bn.running_var.uniform_(0.5, 1.5)
    return model.eval()


def calib(n: int = 48):
    from models.data.eye import eye_frames

    x = torch.as_tensor(eye_frames(seed=0, split="test")[0], dtype=torch.float32)  # [S, T, 2, H, W]
    x = x.reshape(-1, *x.shape[2:])
    frames = torch.cat([x, x.sum(1, keepdim=True)], 1)  # ON, OFF, ON + OFF
    step = max(1, len(frames) // n)
    return frames[::step][:n].numpy()
