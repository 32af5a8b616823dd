"""Per-layer benches: one hw/ block as a stand-alone design, and sparse-conv golden models.

``write_block_build`` emits any single-stream block (a component with ``i``/``o`` token streams and
``i_shape``/``o_shape`` :class:`hw.stream.TokenShape` attributes, as every hw/ block has) as
``verilog/<top>.v`` plus a ``manifest.json`` in the contract's form, so the same source, sink,
scoreboard and fast path that check a whole network check one layer. ``conv_golden`` is the integer
meaning of a sparse conv block (raw int32 accumulators at the output sites).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F
from amaranth.back import verilog

from common.fsutil import write_text
from models import reference as ref

from .toy import layout_fields

__all__ = ["write_block_build", "conv_golden", "output_sites"]


def _port(prefix, shape, layout) -> dict:
    return {"valid": f"{prefix}__valid", "ready": f"{prefix}__ready",
            "payload": f"{prefix}__payload", "payload_width": layout.size,
            "lanes": shape.lanes, "channels": shape.channels, "height": shape.height,
            "width": shape.width, "fields": layout_fields(layout)}


def write_block_build(block, build_dir, *, top: str, layer: dict | None = None,
                      clock_mhz: float = 200) -> Path:
    """Write ``verilog/<top>.v`` and ``manifest.json`` for one block; return ``build_dir``."""
    build_dir = Path(build_dir)
    for attr in ("i_shape", "o_shape", "i_layout", "o_layout"):
        if not hasattr(block, attr):
            raise TypeError(f"{type(block).__name__} has no {attr}; not a token-stream block")
    text = verilog.convert(block, name=top)
    write_text(build_dir / "verilog" / f"{top}.v", text)
    manifest = {"top": top, "verilog": f"verilog/{top}.v", "clock": "clk", "reset": "rst",
                "reset_active": "high", "clock_mhz": clock_mhz, "model": None, "point": None,
                "ports": {"input": _port("i", block.i_shape, block.i_layout),
                          "output": _port("o", block.o_shape, block.o_layout)},
                "layers": [layer or {"name": top, "op": type(block).__name__}]}
    write_text(build_dir / "manifest.json", json.dumps(manifest, indent=2) + "\n")
    return build_dir


def output_sites(coords, *, height: int, width: int, stride: int) -> torch.Tensor:
    """Active output sites in raster order: the input's for stride 1, the 3x3 rule for stride 2."""
    coords = torch.as_tensor(coords, dtype=torch.int64).reshape(-1, 2)
    if stride == 1:
        return coords
    mask = torch.zeros(1, 1, height, width, dtype=torch.float64)
    if len(coords):
        mask[0, 0, coords[:, 0], coords[:, 1]] = 1
    pooled = F.max_pool2d(mask, 3, stride=2, padding=1)[0, 0]
    return torch.nonzero(pooled > 0)


def conv_golden(*, weight, bias, stride: int, height: int, width: int, groups: int = 1):
    """``(coords, feats) -> (coords, acc)`` of a sparse k x k conv with raw int32 accumulators.

    Submanifold for stride 1 (outputs at the input sites), the contract's stride-2 rule otherwise;
    each output sums only over active inputs (dense conv of the zero-filled map, sampled).
    """
    w = torch.as_tensor(weight, dtype=torch.int64)
    if w.dim() == 2:
        w = w[:, :, None, None]
    b = torch.as_tensor(bias, dtype=torch.int64)
    c_in = w.shape[1] * groups

    def golden(coords, feats):
        coords = torch.as_tensor(coords, dtype=torch.int64).reshape(-1, 2)
        feats = torch.as_tensor(feats, dtype=torch.int64).reshape(len(coords), c_in)
        dense = torch.zeros(1, c_in, height, width, dtype=torch.int64)
        if len(coords):
            dense[0, :, coords[:, 0], coords[:, 1]] = feats.t()
        acc = ref.conv2d(dense, w, b, stride=stride, padding=w.shape[-1] // 2, groups=groups)
        out = output_sites(coords, height=height, width=width, stride=stride)
        return out, acc[0][:, out[:, 0], out[:, 1]].t()
    return golden
