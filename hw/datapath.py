"""A MAC unit's products on the layer's datapath: one entry point for the blocks.

The compute blocks (:mod:`hw.conv1x1`, :mod:`hw.conv3x3`, :mod:`hw.dwconv`) build every cycle's
``pe`` adder-tree sums with :func:`mac_sums`, whatever the layer's multiplier datapath
(:data:`contract.constants.DATAPATHS`): one product per DSP slice or DyBit's shift-add
(:mod:`hw.mac`), two products per DSP slice or LUT multipliers (:mod:`hw.mult`); and store their
weights as :func:`stored_codes` says.
"""

from __future__ import annotations

import numpy as np
from amaranth.hdl import Cat, Value

from contract.constants import datapaths, default_datapath
from models.quant.formats import weight_format

from .mac import Pipeline, pipelined_product, pipelined_sum
from .mult import pack_pair, pipelined_lut_product, pipelined_packed_product, pipelined_pair_sums

__all__ = ["check_datapath", "stored_codes", "mac_sums"]


def check_datapath(fmt, datapath: str, *, pe: int | None = None) -> str:
    """``datapath`` (the format's default if empty) if format ``fmt`` can use it (with ``pe``
    output channels in parallel: ``"dsp2"`` pairs them); ``ValueError`` naming both otherwise."""
    f = weight_format(fmt)
    datapath = datapath or default_datapath(f.name)
    allowed = datapaths(f.name, dsp_cell="DSP48E2")
    if datapath not in allowed:
        raise ValueError(f"a {f.name} layer cannot use the {datapath!r} datapath; it can use "
                         + ", ".join(allowed))
    if datapath == "dsp2" and pe is not None and pe % 2:
        raise ValueError(f"the dsp2 datapath pairs output channels: pe must be even, not {pe}")
    return datapath


def stored_codes(fmt, datapath: str, weight) -> np.ndarray:
    """Hardware codes of integer weights ``[C_out, ...]`` as the weight memory stores them for
    ``datapath``: :meth:`WeightFormat.encode` of each value, except that on ``"dsp2"`` the code of
    every odd output channel ``2q + 1`` (the high product of the pair ``2q, 2q + 1``) holds
    ``w[2q + 1] - (w[2q] < 0)`` (:func:`hw.mult.pack_pair`), so that the packed operand is pure
    wiring. Raises ``ValueError`` naming a value the format cannot represent."""
    f = weight_format(fmt)
    w = np.asarray(weight, dtype=np.int64)
    levels = {int(v) for v in f.levels}
    bad = sorted({int(v) for v in np.unique(w)} - levels)
    if bad:
        raise ValueError(f"weight value {bad[0]} is not representable in {f.name}")
    if datapath != "dsp2":  # "" or a format's own: its encoding
        return np.asarray(f.encode(w), dtype=np.int64)
    if w.shape[0] % 2:
        raise ValueError(f"dsp2 packs output channels in pairs: {w.shape[0]} is odd")
    lo, hi = w[0::2], w[1::2]
    words = np.vectorize(lambda h, lw: pack_pair(int(h), int(lw), wbits=f.bits))(hi, lo)
    mask = (1 << f.bits) - 1
    codes = np.empty_like(w)
    codes[0::2] = words & mask
    codes[1::2] = (words >> f.bits) & mask
    return codes


def mac_sums(pipe: Pipeline, fmt, datapath: str, *, pe: int, n: int, code, act,
             name: str = "mac") -> list:
    """The ``pe`` sums ``sum_j w[p, j] * a[p, j]`` (``j < n``) of a MAC unit's cycle, each
    ``PRODUCT_STAGES[datapath] + tree_stages(n)`` stages after its registered operands.

    ``code(p, j)`` is the stored code (:func:`stored_codes`) of product ``(p, j)`` in the
    registered weight word and ``act(p, j)`` its registered signed activation. On ``"dsp2"`` the
    products of channels ``2q`` and ``2q + 1`` share the activation ``act(2q, j)`` and one DSP
    slice (:func:`hw.mult.pipelined_packed_product`); on ``"lut"`` each product is a LUT multiplier
    (:func:`hw.mult.pipelined_lut_product`); otherwise :func:`pipelined_product`.
    """
    f = weight_format(fmt)
    if datapath == "dsp2":
        if pe % 2:
            raise ValueError(f"dsp2 needs an even pe, not {pe}")
        sums = []
        for q in range(pe // 2):
            triples = []
            for j in range(n):
                a = act(2 * q, j)
                word = Cat(code(2 * q, j), code(2 * q + 1, j))
                triples.append(pipelined_packed_product(pipe, word, a, wbits=f.bits,
                                                        abits=len(Value.cast(a)),
                                                        name=f"{name}_pp{q}_{j}"))
            hi, lo = pipelined_pair_sums(pipe, triples, name=f"{name}_ps{q}")
            sums += [lo, hi]
        return sums
    if datapath == "lut":
        def prod(p, j):
            return pipelined_lut_product(pipe, code(p, j), act(p, j), wbits=f.bits,
                                         name=f"{name}_lp{p}_{j}")
    else:
        if datapath != default_datapath(f.name):
            raise ValueError(f"a {f.name} layer cannot use the {datapath!r} datapath")

        def prod(p, j):
            return pipelined_product(pipe, f, code(p, j), act(p, j), name=f"prod{p * n + j}")
    return [pipelined_sum(pipe, [prod(p, j) for j in range(n)], name=f"sum{p}")
            for p in range(pe)]
