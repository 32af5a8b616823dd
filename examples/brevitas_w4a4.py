"""A Brevitas quantization-aware-trained network, exported to QONNX: W4A4 with max pools and a
dense head over the pooled map, for scikit-learn's 8 x 8 digits.

Nothing here imports codesign. ``examples/brevitas_w4a4.onnx`` and
``examples/brevitas_w4a4_calib.npz`` are what this script writes; codesign takes the QONNX file
as it is, with the model's own quantizers:

    codesign flow --model examples/brevitas_w4a4.onnx --calib examples/brevitas_w4a4_calib.npz

Regenerate them (needs ``pip install -e '.[dev]'``, which brings Brevitas) with

    python examples/brevitas_w4a4.py

The network: an 8-bit input quantizer (unsigned, 7 bits of range: pixels are non-negative),
conv 3x3 16 (4-bit weights, per-channel scales) + BatchNorm + 4-bit unsigned QuantReLU, max pool,
conv 3x3 32 (same) + BatchNorm + QuantReLU, max pool, flatten of the 2 x 2 x 32 map, linear 64
(4-bit weights) + QuantReLU, linear 10 (8-bit weights, per-tensor scale; raw logits). Trained
for a few seconds, seeded.
"""

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

HERE = Path(__file__).resolve().parent
ONNX = HERE / "brevitas_w4a4.onnx"
CALIB = HERE / "brevitas_w4a4_calib.npz"
N_TRAIN = 1000


def digits():
    """scikit-learn's digits as ``(x float32 [N, 1, 8, 8] in [0, 1], y int64 [N])``, shuffled
    with a fixed seed."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images.astype(np.float32) / 16.0)[:, None]
    y = d.target.astype(np.int64)
    perm = np.random.default_rng(11).permutation(len(y))
    return x[perm], y[perm]


def network():
    import brevitas.nn as qnn
    from brevitas.quant import Int8WeightPerTensorFloat, Uint8ActPerTensorFloat

    class InputQuant(Uint8ActPerTensorFloat):
        bit_width = 7  # pixels are non-negative; 7 unsigned bits fit the signed 8-bit stream

    class W4PerChannel(Int8WeightPerTensorFloat):
        bit_width = 4
        scaling_per_output_channel = True

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.inp = qnn.QuantIdentity(act_quant=InputQuant, return_quant_tensor=True)
            self.conv1 = qnn.QuantConv2d(1, 16, 3, padding=1, bias=False,
                                         weight_quant=W4PerChannel)
            self.bn1 = nn.BatchNorm2d(16)
            self.relu1 = qnn.QuantReLU(bit_width=4, return_quant_tensor=True)
            self.conv2 = qnn.QuantConv2d(16, 32, 3, padding=1, bias=False,
                                         weight_quant=W4PerChannel)
            self.bn2 = nn.BatchNorm2d(32)
            self.relu2 = qnn.QuantReLU(bit_width=4, return_quant_tensor=True)
            self.fc1 = qnn.QuantLinear(2 * 2 * 32, 64, bias=True, weight_quant=W4PerChannel)
            self.relu3 = qnn.QuantReLU(bit_width=4, return_quant_tensor=True)
            self.fc2 = qnn.QuantLinear(64, 10, bias=True, weight_bit_width=8)

        def forward(self, x):
            x = self.inp(x)
            x = F.max_pool2d(self.relu1(self.bn1(self.conv1(x))), 2)
            x = F.max_pool2d(self.relu2(self.bn2(self.conv2(x))), 2)
            x = torch.flatten(x, 1)
            return self.fc2(self.relu3(self.fc1(x)))

    return Net()


def train(epochs: int = 25):
    torch.manual_seed(0)
    x, y = digits()
    xt, yt = torch.from_numpy(x[:N_TRAIN]), torch.from_numpy(y[:N_TRAIN])
    model = network()
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    gen = torch.Generator().manual_seed(0)
    for _ in range(epochs):
        model.train()
        for idx in torch.randperm(len(yt), generator=gen).split(50):
            loss = F.cross_entropy(model(xt[idx]), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
    return model.eval()


def export(model, path=ONNX):
    import onnx
    from brevitas.export import export_qonnx

    export_qonnx(model, torch.zeros(1, 1, 8, 8), export_path=str(path))
    # one self-contained file (the exporter may put the weights beside it)
    proto = onnx.load(str(path))
    onnx.save(proto, str(path), save_as_external_data=False)
    Path(str(path) + ".data").unlink(missing_ok=True)


def main():
    model = train()
    x, y = digits()
    with torch.no_grad():
        acc = (model(torch.from_numpy(x[N_TRAIN:])).argmax(1).numpy() == y[N_TRAIN:]).mean()
    print(f"QAT accuracy on the {len(y) - N_TRAIN} held-out digits: {acc:.4f}")
    export(model)
    np.savez_compressed(CALIB, x=x[N_TRAIN:], y=y[N_TRAIN:])
    print(f"wrote {ONNX} and {CALIB}")


if __name__ == "__main__":
    main()
