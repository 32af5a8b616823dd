"""Per-layer benches: one hw/ block as a stand-alone design, and sparse-conv golden models.

``write_block_build`` emits any single-stream block (a component with ``i``/``o`` token streams and
``i_shape``/``o_shape`` :class:`hw.stream.TokenShape` attributes, as every hw/ block has) as
``verilog/<top>.v`` plus a ``manifest.json`` in the contract's form, so the same source, sink,
scoreboard and fast path that check a whole network check one layer. ``conv_golden`` is the integer
meaning of a sparse conv block (raw int32 accumulators at the output sites):
:func:`models.reference.sparse_conv`, the one golden model of every conv.
"""

from __future__ import annotations

import json
from pathlib import Path

from amaranth.back import verilog

from common.fsutil import write_text
from hw.build import write_design
from models import reference as ref

__all__ = ["write_block_build", "conv_golden"]


def write_block_build(block, build_dir, *, top: str, layer: dict | None = None,
                      clock_mhz: float = 200) -> Path:
    """Write ``verilog/<top>.v`` and ``manifest.json`` for one block; return ``build_dir``."""
    build_dir = Path(build_dir)
    for attr in ("i_shape", "o_shape", "i_layout", "o_layout"):
        if not hasattr(block, attr):
            raise TypeError(f"{type(block).__name__} has no {attr}; not a token-stream block")
    manifest = write_design(build_dir, top=top, text=verilog.convert(block, name=top),
                            i_shape=block.i_shape, o_shape=block.o_shape, clock_mhz=clock_mhz,
                            layers=[layer or {"name": top, "op": type(block).__name__}])
    write_text(build_dir / "manifest.json", json.dumps(manifest, indent=2) + "\n")
    return build_dir


def conv_golden(*, weight, bias, stride: int, height: int, width: int, groups: int = 1):
    """``(coords, feats) -> (coords, acc)`` of a sparse k x k conv with raw int32 accumulators
    (:func:`models.reference.sparse_conv`)."""
    def golden(coords, feats):
        return ref.sparse_conv(coords, feats, weight=weight, bias=bias, height=height, width=width,
                               stride=stride, groups=groups)
    return golden
