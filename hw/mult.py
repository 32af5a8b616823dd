"""Two more product datapaths beside :mod:`hw.mac`'s one-multiplier-per-product: two products per
multiplier ("packed" pairs) and a multiplier in LUTs for 2- to 4-bit weights (no DSP).

Packed pairs
------------
Two output channels that share one activation ``a`` (``abits`` bits, signed) have weights
``w_hi`` and ``w_lo`` (``wbits`` bits, narrow range: ``|w| <= 2^(wbits-1) - 1``). With the shift
``s = pack_shift(wbits, abits) = wbits + abits - 1`` one multiplier computes both products::

    A = w_hi * 2^s + w_lo                    (packed_width = wbits + s bits, signed)
    P = A * a = H * 2^s + L,    H = w_hi * a,  L = w_lo * a

Narrow range gives ``|L| <= (2^(wbits-1) - 1) * 2^(abits-1) < 2^(s-1)``, so ``L`` is a signed
``s``-bit value and ``P mod 2^s = L mod 2^s``: the sign-extended low ``s`` bits of ``P`` are
exactly ``L``. The rest, ``floor(P / 2^s) = H + floor(L / 2^s)``, is ``H`` when ``L >= 0`` and
``H - 1`` when ``L < 0``, and ``L < 0`` is exactly bit ``s-1`` of ``P`` (the sign of the low
part). Hence, with ``hi = P >> s`` (arithmetic), ``lo = sext(P[0:s])`` and ``borrow = P[s-1]``::

    w_hi * a == hi + borrow,    w_lo * a == lo

for every weight pair and every activation, with no rounding anywhere. ``|H| < 2^(s-1)`` as well,
so ``hi`` (which is ``H`` or ``H - 1 >= -2^(s-1)``) fits ``s`` signed bits too, and ``P`` needs
only its low ``2 s`` bits. The multiplier is ``packed_width x abits`` signed: 23 x 8 for int8
(a DSP48E1 is 25 x 18, a DSP48E2 27 x 18) and 15 x 8 (16 x 9 for 9-bit activations) for int4,
which fits an ECP5 MULT18X18D (int8's 23 bits do not: Yosys splits that multiply over two).

``A`` costs no adder: weight memory stores, per pair, the ``2 * wbits``-bit word
:func:`pack_pair` builds, ``w_lo``'s code in the low ``wbits`` bits and ``w_hi - [w_lo < 0]``'s
code above it (narrow range keeps ``w_hi - 1 >= -2^(wbits-1)`` in ``wbits`` bits). Then ``A`` is
wiring (:func:`packed_operand`): ``w_lo``'s code sign-extended to ``s`` bits, then the adjusted
``w_hi`` code, read as signed. That is ``(w_hi - [w_lo < 0]) * 2^s + (w_lo mod 2^s)``, and
``w_lo mod 2^s = w_lo + 2^s [w_lo < 0]``, which gives ``w_hi * 2^s + w_lo``.

The borrows cost almost nothing (:func:`pipelined_pair_sums`): an adder ``x + y + c`` with a
1-bit ``c`` is one carry chain with ``c`` as its carry-in, so the tree of the ``hi`` values,
which has ``n - 1`` adders for ``n`` products, takes ``n - 1`` borrows as carry-ins, each
registered with its subtree until an adder takes it. The last one is added by an incrementer
beside an adder level (a node that a level with an odd count passes through), or, when no level
has one (``n`` a power of two), at the root's adder. Against the same adders without borrows
Yosys counts 1 more LUT on UltraScale+ and 16-18 more LUT4 sites on ECP5 for 9 or 36 products,
plus the borrows' flip-flops (``reports/mult_synth.md``).

LUT products
------------
:func:`lut_product` multiplies a ``wbits``-bit two's complement code (2 to 4 bits) by a signed
activation without ``*`` (so Yosys neither infers a ``$mul`` nor maps a DSP): radix-4 Booth. With
``w_{-1} = 0`` and the code sign-extended, digit ``i`` is ``d_i = w_{2i-1} + w_{2i} - 2 w_{2i+1}``
in ``{-2, ..., 2}`` and ``w = d_0 + 4 d_1`` (one digit for 2 bits). Each row ``d_i * a`` is
``a`` or ``2 a`` (or zero) selected by the digit, one's-complemented when the digit is negative:
``row_i' = row_i - neg_i`` (``-x = ~x + 1``). Row 1 is made exact (``row_1' + neg_1``: an
incrementer, one carry chain), row 0's ``+ neg_0`` is the carry-in of the final adder::

    w * a = row_0' + neg_0 + 4 (row_1' + neg_1)

Each step is exact in ``wbits + len(act)`` bits, where the product fits. (Both corrections cannot
share the final adder: one carry-in holds only one; a third operand costs a compressor per bit.)
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Mux, Value

from contract.constants import PRODUCT_STAGES, TREE_LEVELS_PER_STAGE, pack_shift, packed_width
from hw.mac import Pipeline, pipelined_sum, sum_width

__all__ = ["pack_shift", "packed_width", "pack_pair", "packed_operand",
           "pipelined_packed_product", "pipelined_pair_sums", "LUT_PRODUCT_STAGES",
           "lut_product_width", "lut_product", "pipelined_lut_product"]

#: Register stages of :func:`pipelined_lut_product` once its operands are registered: the
#: contract's, which the DSE prices the pipeline by (one: its logic, Booth digits, rows, row 1's
#: incrementer and the sum, placed and routed alone on ECP5 speed 6 is 6.4 ns from operand to
#: product register, less than an int4 product's MULT18X18D stage, 7.1 ns, in the same harness).
LUT_PRODUCT_STAGES = PRODUCT_STAGES["lut"]


def _check_bits(wbits, abits=None):
    if not isinstance(wbits, int) or wbits < 2:
        raise ValueError(f"wbits must be an integer >= 2, not {wbits!r}")
    if abits is not None and (not isinstance(abits, int) or abits < 2):
        raise ValueError(f"abits must be an integer >= 2, not {abits!r}")


def _signed_act(act, abits=None) -> Value:
    act = Value.cast(act)
    if not act.shape().signed:
        raise TypeError(f"the activation must be a signed value, not {act.shape()!r}")
    if abits is not None and len(act) > abits:
        raise ValueError(f"the activation has {len(act)} bits, more than abits={abits}")
    return act


def pack_pair(w_hi: int, w_lo: int, *, wbits: int) -> int:
    """The ``2 * wbits``-bit weight-memory word of a pair: ``w_lo``'s two's complement code in
    the low ``wbits`` bits, ``w_hi - (1 if w_lo < 0 else 0)``'s above it (unsigned).

    Raises
    ------
    ValueError
        If a weight is not an integer in the narrow range ``[-(2^(wbits-1) - 1), 2^(wbits-1) - 1]``.
    """
    _check_bits(wbits)
    q = (1 << (wbits - 1)) - 1
    for what, w in (("w_hi", w_hi), ("w_lo", w_lo)):
        if isinstance(w, bool) or not isinstance(w, int) or not -q <= w <= q:
            raise ValueError(f"{what}={w!r} is outside the {wbits}-bit narrow range [-{q}, {q}]")
    mask = (1 << wbits) - 1
    return (((w_hi - (w_lo < 0)) & mask) << wbits) | (w_lo & mask)


def packed_operand(word, *, wbits: int, abits: int) -> Value:
    """The signed ``packed_width(wbits, abits)``-bit operand ``A = w_hi * 2^s + w_lo`` of a
    :func:`pack_pair` word: wiring only (``w_lo``'s code sign-extended to ``s`` bits, then the
    adjusted ``w_hi`` code)."""
    _check_bits(wbits, abits)
    s = pack_shift(wbits, abits)
    word = Value.cast(word)
    if len(word) < 2 * wbits:
        raise ValueError(f"a packed word has {2 * wbits} bits, this one {len(word)}")
    lo, hi = word[:wbits], word[wbits:2 * wbits]
    return Cat(lo, lo[-1].replicate(s - wbits), hi).as_signed()


def pipelined_packed_product(pipe: Pipeline, word, act, *, wbits: int, abits: int,
                             name: str = "pp"):
    """Both products of a pair: ``packed_operand(word) * act`` registered once (one stage, as
    an int product in :func:`hw.mac.pipelined_product`), and its slices.

    Parameters
    ----------
    pipe : Pipeline
        The pipeline whose enable advances the product register.
    word : Value
        A registered :func:`pack_pair` word (``2 * wbits`` bits), or its :func:`packed_operand`
        registered (``packed_width`` bits). The operand is wiring of the word (Yosys merges the
        copies of its sign bit: no more flip-flops), and a DSP's input register can absorb its
        register: Yosys maps it to DSP48E1's ``AREG`` (the word's stays in the fabric, its bits
        fanning out to the sign extension), and neither into DSP48E2 nor into MULT18X18D
        (``reports/mult_synth.md``).
    act : Value
        A registered signed activation of at most ``abits`` bits.
    wbits, abits : int
        Weight and activation bits.
    name : str
        Name of the product register.

    Returns
    -------
    tuple of Value
        ``(hi, lo, borrow)``: ``hi`` = ``P >> s`` (signed, ``s`` bits), ``lo`` = ``P[0:s]``
        sign-extended (signed, ``s`` bits), ``borrow`` = ``P[s-1]`` (1 bit), with
        ``w_hi * act == hi + borrow`` and ``w_lo * act == lo``.
    """
    _check_bits(wbits, abits)
    s = pack_shift(wbits, abits)
    act = _signed_act(act, abits)
    word = Value.cast(word)
    if len(word) == packed_width(wbits, abits):
        operand = word.as_signed()
    elif len(word) == 2 * wbits:
        operand = packed_operand(word, wbits=wbits, abits=abits)
    else:
        raise ValueError(f"a packed word has {2 * wbits} bits and its operand "
                         f"{packed_width(wbits, abits)}, not {len(word)}")
    prod = pipe.data((operand * act)[:2 * s], name=name)
    return prod[s:2 * s].as_signed(), prod[:s].as_signed(), prod[s - 1]


def _add(x, y, carries, width) -> Value:
    """``x + y + sum(carries)`` truncated to the ``width`` signed bits that hold it."""
    v = x + y
    for c in carries:
        v = v + c
    return v[:width].as_signed()


def _borrow_tree(pipe: Pipeline, his, borrows, name: str) -> Value:
    """``sum(his) + sum(borrows)`` on :func:`hw.mac.pipelined_sum`'s schedule, each borrow a
    carry-in (see the module docstring). A node is ``[value, leaves, pending borrows]``: each
    holds exactly one pending borrow until the one incrementer, after which its ancestors hold
    none."""
    w = max(len(h) for h in his)
    nodes = [[h, 1, [b]] for h, b in zip(his, borrows, strict=True)]
    counts, c = [], len(nodes)
    while c > 1:
        counts.append(c)
        c = (c + 1) // 2
    fix = next((i for i, c in enumerate(counts) if c % 2), None)
    level = 0
    while len(nodes) > 1:
        nxt = []
        last = len(nodes) == 2
        for i in range(0, len(nodes) - 1, 2):
            (x, kx, px), (y, ky, py) = nodes[i], nodes[i + 1]
            pend = px + py
            take = pend if last else pend[:1]  # the root takes both when nothing took one
            nxt.append([_add(x, y, take, sum_width(w, kx + ky)), kx + ky, pend[len(take):]])
        if len(nodes) % 2:
            x, kx, px = nodes[-1]
            if level == fix:
                x, px = _add(x, 0, px, sum_width(w, kx)), []
            nxt.append([x, kx, px])
        nodes = nxt
        level += 1
        if level % TREE_LEVELS_PER_STAGE == 0 or len(nodes) == 1:
            nodes = [[pipe.reg(v, name=f"{name}_l{level}_{i}"), k,
                      [pipe.reg(p, name=f"{name}_l{level}_{i}_b") for p in pend]]
                     for i, (v, k, pend) in enumerate(nodes)]
    (v, _, pend), = nodes
    if pend:  # a single product: hi + borrow, combinational as pipelined_sum's single value
        v = _add(v, 0, pend, w)
    return v


def pipelined_pair_sums(pipe: Pipeline, triples, *, name: str = "ps"):
    """The two sums of ``n`` packed products, ``tree_stages(n)`` register stages later.

    Parameters
    ----------
    pipe : Pipeline
        The pipeline whose enable advances every register.
    triples : sequence of (Value, Value, Value)
        ``(hi, lo, borrow)`` of :func:`pipelined_packed_product` (``hi + borrow`` must fit ``hi``'s
        signed width, as it does there).
    name : str
        Prefix of the register names.

    Returns
    -------
    tuple of Value
        ``(sum_hi, sum_lo)`` = ``(sum(hi_i + borrow_i), sum(lo_i))``, signed: ``sum_lo`` from
        :func:`hw.mac.pipelined_sum`, ``sum_hi`` from a tree on the same schedule that takes the
        borrows as its adders' carry-ins (``sum_width(len(hi), n)`` bits). A single triple is
        summed combinationally (0 stages).
    """
    triples = [tuple(Value.cast(v) for v in t) for t in triples]
    if not triples:
        raise ValueError("pipelined_pair_sums of no products")
    for hi, lo, b in triples:
        if len(b) != 1 or not hi.shape().signed or not lo.shape().signed:
            raise ValueError("each triple is (signed hi, signed lo, 1-bit borrow)")
    his, los, borrows = zip(*triples, strict=True)
    return (_borrow_tree(pipe, his, borrows, f"{name}_hi"),
            pipelined_sum(pipe, los, name=f"{name}_lo"))


def lut_product_width(wbits: int, act_width: int) -> int:
    """Signed bits of :func:`lut_product`: ``wbits + act_width`` (as
    ``hw.mac.product_width("int4", act_width)`` for 4-bit weights)."""
    return wbits + act_width


def _booth_digits(code: Value, wbits: int):
    """``(one, two, neg)`` of each radix-4 Booth digit of the ``wbits``-bit code: ``|d|`` is 1
    or 2 (neither: 0), ``neg`` that ``d < 0``."""
    n = (wbits + 1) // 2
    c = Cat(Const(0, 1), code, code[-1].replicate(2 * n + 1 - wbits))
    digits = []
    for i in range(n):
        lo, mid, hi = c[2 * i], c[2 * i + 1], c[2 * i + 2]
        one = mid ^ lo
        two = Mux(hi, ~mid & ~lo, mid & lo)
        digits.append((one, two, hi & ~(mid & lo)))
    return digits


def _booth_row(act: Value, digit, width: int) -> Value:
    """``d * act - neg`` in ``width`` signed bits: ``act`` or ``2 act`` (or 0), inverted when the
    digit is negative (one's complement)."""
    one, two, neg = digit
    a = Cat(act, act[-1].replicate(width - len(act)))
    sel = Mux(two, Cat(Const(0, 1), a[:-1]), Mux(one, a, 0))
    return (sel ^ neg.replicate(width)).as_signed()


def _lut_rows(code, act, wbits: int):
    """``(row0', neg0, row1)``: row 0 one's-complemented (``width`` bits) and its correction,
    row 1 exact (``width - 2`` bits), ``None`` for a 2-bit code."""
    if not isinstance(wbits, int) or not 2 <= wbits <= 4:
        raise ValueError(f"lut_product takes 2- to 4-bit weights, not wbits={wbits!r}")
    code = Value.cast(code)
    act = _signed_act(act)
    if len(code) < wbits:
        raise ValueError(f"code has {len(code)} bits, wbits={wbits}")
    width = lut_product_width(wbits, len(act))
    digits = _booth_digits(code[:wbits], wbits)
    row0 = _booth_row(act, digits[0], width)
    if len(digits) == 1:
        return row0, digits[0][2], None
    neg1 = digits[1][2]
    row1 = (_booth_row(act, digits[1], width - 2) + neg1)[:width - 2].as_signed()
    return row0, digits[0][2], row1


def _lut_sum(row0, neg0, row1) -> Value:
    width = len(row0)
    if row1 is None:
        return (row0 + neg0)[:width].as_signed()
    return (row0 + Cat(Const(0, 2), row1).as_signed() + neg0)[:width].as_signed()


def lut_product(code, act, *, wbits: int) -> Value:
    """Signed product of a ``wbits``-bit two's complement ``code`` (2 to 4 bits; every code,
    narrow range or not) and a signed ``act``, without a multiplier (radix-4 Booth rows, see the
    module docstring): ``signed(lut_product_width(wbits, len(act)))``."""
    return _lut_sum(*_lut_rows(code, act, wbits))


def pipelined_lut_product(pipe: Pipeline, code, act, *, wbits: int, name: str = "lp") -> Value:
    """:func:`lut_product` of registered operands, registered, :data:`LUT_PRODUCT_STAGES` stages
    later (with 2: the rows, then their sum)."""
    if LUT_PRODUCT_STAGES == 1:
        return pipe.reg(lut_product(code, act, wbits=wbits), name=name)
    row0, neg0, row1 = _lut_rows(code, act, wbits)
    row0, neg0 = pipe.reg(row0, name=f"{name}_r0"), pipe.reg(neg0, name=f"{name}_n0")
    if row1 is not None:
        row1 = pipe.reg(row1, name=f"{name}_r1")
    return pipe.reg(_lut_sum(row0, neg0, row1), name=name)
