"""Weight x activation products, one per weight format, and the adder tree that sums them.

Integer formats (``int8``, ``int4``) are a plain signed multiply, which Yosys maps to a DSP48E2.
DyBit formats never use the ``*`` operator: the stored code is decoded into a sign, the run length
``k`` and the mantissa ``f`` (see :mod:`models.quant.dybit`), and the magnitude is rebuilt as

- ``k = 0``:            ``m = f``                             (``f`` has ``N-2`` bits)
- ``1 <= k <= N-2``:    ``m = 2^(N-3+k) + f * 2^(2k-1)``      (``f`` has ``r = N-2-k`` bits)
- ``k = N-1``:          ``m = 2^(2N-4)`` = ``2^(N-3+k)``

so the product is the sign-adjusted activation shifted by ``N-3+k`` (when ``k >= 1``) plus
``sum_j f[j] * act << (j + s_k)``: at most ``N-1`` shifted copies, selected by the decoded fields.
That is LUT logic only, which is why the DSE can trade DyBit layers against DSP-bound int8 ones.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Mux, Signal, Value, signed

from contract.constants import PRODUCT_STAGES, TREE_LEVELS_PER_STAGE, default_datapath
from models.quant.formats import WeightFormat, weight_format

__all__ = ["product", "product_width", "code_width", "adder_tree", "sum_width", "Pipeline",
           "pipelined_product", "pipelined_sum"]


def _fmt(fmt) -> WeightFormat:
    return weight_format(fmt)


def code_width(fmt) -> int:
    """Bits of one stored weight code."""
    return _fmt(fmt).bits


def product_width(fmt, act_width: int) -> int:
    """Signed bits holding ``weight * act`` for every code and every ``act_width``-bit ``act``."""
    f = _fmt(fmt)
    if not isinstance(act_width, int) or act_width < 1:
        raise TypeError(f"act_width must be a positive integer, not {act_width!r}")
    if f.kind == "int":
        return f.bits + act_width
    # |m| <= 2^(2N-4) and |act| <= 2^(act_width-1)
    return act_width + 2 * f.bits - 3


def _dybit_decode(n: int, code: Value, act: Value):
    """``(a, k, f)``: the sign-adjusted activation, the run length and the masked mantissa."""
    mag = code[:n - 1]
    sign = code[n - 1]
    a = Mux(sign, -act, act)
    # run length of leading ones: each all-ones prefix of the magnitude bits counts one
    k = adder_tree([mag[n - 1 - i:n - 1].all() for i in range(1, n)])[:(n - 1).bit_length()]
    # mantissa f, right-aligned in N-2 bits: bit j belongs to f iff j < r = N-2-k
    f = mag[:n - 2] & (Const((1 << (n - 2)) - 1, n - 2) >> k)
    return a, k, f


def _dybit_terms(n: int, a: Value, k: Value, f: Value):
    """``(lead, pf, shift_f)``: the leading copy, the mantissa's copies summed, their shift."""
    pf = adder_tree([Mux(f[j], a << j, 0) for j in range(n - 2)])
    nonzero_k = k.any()
    shift_f = Mux(nonzero_k, (k << 1) - 1, 0)[:len(k) + 1]
    lead = Mux(nonzero_k, a << (k + (n - 3)), 0)
    return lead, pf, shift_f


def _dybit_product(n: int, code: Value, act: Value) -> Value:
    lead, pf, shift_f = _dybit_terms(n, *_dybit_decode(n, code, act))
    return lead + (pf << shift_f)


def product(fmt, code, act) -> Value:
    """Signed product of a stored weight ``code`` and a signed activation ``act``.

    Parameters
    ----------
    fmt : WeightFormat or str
        Weight format of ``code``.
    code : Value
        Stored code (low ``fmt.bits`` bits used): two's complement for int formats, a DyBit code
        for DyBit formats.
    act : Value
        Signed activation.

    Returns
    -------
    Value
        ``signed(product_width(fmt, len(act)))``, equal to ``fmt.decode(code) * act``.
    """
    f = _fmt(fmt)
    code = Value.cast(code)
    act = Value.cast(act)
    if len(code) < f.bits:
        raise ValueError(f"code has {len(code)} bits, {f.name} needs {f.bits}")
    code = code[:f.bits]
    width = product_width(f, len(act))
    if f.kind == "int":
        raw = code.as_signed() * act
    else:
        raw = _dybit_product(f.bits, code, act)
    raw = raw.as_signed()
    if len(raw) < width:
        raw = Cat(raw, raw[-1].replicate(width - len(raw)))
    # every intermediate is exact and the true value fits in `width` signed bits
    return raw[:width].as_signed()


def sum_width(width: int, count: int) -> int:
    """Signed bits of the sum of ``count`` signed ``width``-bit values."""
    return width + max(count - 1, 0).bit_length()


def adder_tree(values) -> Value:
    """Balanced sum of signed values (an empty list sums to 0)."""
    vals = [Value.cast(v) for v in values]
    if not vals:
        return Const(0, signed(1))
    while len(vals) > 1:
        nxt = [vals[i] + vals[i + 1] for i in range(0, len(vals) - 1, 2)]
        if len(vals) % 2:
            nxt.append(vals[-1])
        vals = nxt
    return vals[0]


class Pipeline:
    """Registers of one pipeline that all advance while ``en`` is high (the blocks' stall rule:
    ``en = ~o.valid | o.ready``), so a value registered ``n`` times is the value of ``n`` cycles
    of ``en`` ago. Call its methods outside any ``with m.If(...)`` of the caller."""

    def __init__(self, m, en):
        self.m, self.en = m, en

    def reg(self, value, name=None, *, reset_less=False) -> Signal:
        """``value`` one stage later."""
        value = Value.cast(value)
        sig = Signal(value.shape(), name=name, reset_less=reset_less)
        with self.m.If(self.en):
            self.m.d.sync += sig.eq(value)
        return sig

    def data(self, value, name=None) -> Signal:
        """``value`` one stage later in a register without reset: an operand or a product, whose
        value matters only while the valid bit that travels beside it is set. A reset-free
        register next to a multiplier is one that :mod:`hw.ecp5_dsp` may move into the
        MULT18X18D (a DSP register's reset does not follow a fabric register's rule)."""
        return self.reg(value, name=name, reset_less=True)

    def delay(self, value, stages: int, name=None) -> Value:
        """``value`` ``stages`` stages later (itself for 0)."""
        value = Value.cast(value)
        for i in range(stages):
            value = self.reg(value, name=f"{name}_d{i + 1}" if name else None)
        return value


def pipelined_product(pipe: Pipeline, fmt, code, act, name="prod") -> Value:
    """:func:`product` of registered operands, registered, ``PRODUCT_STAGES[fmt]`` stages later.

    An int format is one multiplier and its output register. A DyBit one is decoded (sign-adjusted
    activation, run length, mantissa), then turned into its shifted copies (the leading copy and the
    mantissa's summed copies), then summed: three stages of a few LUT levels each.
    """
    f = _fmt(fmt)
    width = product_width(f, len(Value.cast(act)))
    if f.kind == "int":
        out = pipe.data(product(f, code, act), name=name)
    else:
        n = f.bits
        code = Value.cast(code)[:n]
        a, k, mant = (pipe.reg(v, name=f"{name}_{t}")
                      for t, v in zip("akf", _dybit_decode(n, code, Value.cast(act)), strict=True))
        lead, pf, shift_f = (pipe.reg(v, name=f"{name}_{t}")
                             for t, v in zip(("lead", "pf", "sh"), _dybit_terms(n, a, k, mant),
                                             strict=True))
        raw = (lead + (pf << shift_f)).as_signed()
        if len(raw) < width:
            raw = Cat(raw, raw[-1].replicate(width - len(raw)))
        out = pipe.reg(raw[:width].as_signed(), name=name)
    assert PRODUCT_STAGES[default_datapath(f.name)] == (1 if f.kind == "int" else 3)
    return out


def pipelined_sum(pipe: Pipeline, values, name="sum") -> Value:
    """:func:`adder_tree` of ``values`` with a register after every
    :data:`~contract.constants.TREE_LEVELS_PER_STAGE` levels and after the last one:
    :func:`~contract.constants.tree_stages` stages later (a single value is returned as it is)."""
    vals = [Value.cast(v) for v in values]
    if not vals:
        raise ValueError("pipelined_sum of no values")
    level = 0
    while len(vals) > 1:
        nxt = [vals[i] + vals[i + 1] for i in range(0, len(vals) - 1, 2)]
        if len(vals) % 2:
            nxt.append(vals[-1])
        vals = nxt
        level += 1
        if level % TREE_LEVELS_PER_STAGE == 0 or len(vals) == 1:
            vals = [pipe.reg(v, name=f"{name}_l{level}_{i}") for i, v in enumerate(vals)]
    return vals[0]
