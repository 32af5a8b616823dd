"""A MAC unit's weight ROM, read through a register, in slices that synthesis keeps apart.

A compute block reads one word of its weight ROM per cycle: the codes of every product it forms
in that cycle (``pe x lanes x taps`` of them), one cycle after the address (as a synchronous
read port). A shallow ROM (at most :data:`contract.constants.ROM_SLICE_MAX_DEPTH` words) is
logic on every family: each code bit is a function of the few address bits. Two code bits with
the same function over the words are then one LUT and one register to Yosys (``opt_merge``,
ABC), whichever products they feed: on LeNet-5's conv2 (8 words of 1,200 bits), 1,200 code
registers became 253 with a median fan-out of 62 and a worst of 235, spread over the whole MAC
array, and the worst path of the placed network was one of those nets (13.2 ns of a 19.0 ns
path on ECP5; docs/IMPLEMENT.md, "The weight ROM in slices").

:func:`weight_rom` cuts such a ROM into ``slices`` contiguous slices of the word (the caller's
groups of products that sit together: one accumulator's products, or one lane's), each with its
own copy of the address register, read combinationally from it. The copies carry the ``keep``
attribute: :func:`hw.synth.synthesize_verilog` moves it from the registers' wires onto their
flip-flops before synthesis (Yosys does not merge two kept cells), so each slice's ROM logic is
a function of its own address and nothing is shared across slices: its code registers feed only
its own products. (A user taking the Verilog to Vivado keeps the copies apart with
``synth_design -keep_equivalent_registers``; not checked here, no Vivado.) Deeper ROMs (block RAM)
are one memory with a synchronous read port, as before. Either way the read behaves as a
synchronous read port: ``data`` is the word at the ``addr`` of the last cycle with ``en``.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Signal, unsigned
from amaranth.lib.memory import Memory

from contract.constants import ROM_SLICE_MAX_DEPTH

__all__ = ["weight_rom", "rom_slices", "ROM_SLICE_MAX_DEPTH"]

#: Datapaths whose products are fabric logic (LUT multipliers, DyBit shift-add): their code
#: registers stay in the fabric, so a shared one is a long net. On a DSP datapath each
#: MULT18X18D takes its operand register in (hw.ecp5_dsp), a copy of its own, so sharing costs
#: nothing there; and sliced, a code register right after the ROM's logic gets a synchronous
#: reset from Yosys (a ROM bit that is 0 whenever an address bit is), which a DSP register
#: cannot stand for: the digits network's DSPs took their operand registers 56 times in 103
#: where they took them 95 times unsliced.
FABRIC_DATAPATHS = ("lut", "shift-add")


def rom_slices(datapath: str, groups: int) -> int:
    """Slices of a MAC unit's weight ROM: ``groups`` on a fabric datapath, else one."""
    return groups if datapath in FABRIC_DATAPATHS else 1


class _SlicedRead:
    """The read side of a sliced ROM: ``addr`` and ``en`` in, ``data`` out (the slices' words
    side by side), as a synchronous read port."""

    def __init__(self, width: int, depth: int):
        self.addr = Signal(range(max(depth, 2)), name="rom_addr")
        self.en = Signal(name="rom_en")
        self.data = Signal(width, name="rom_data")


def weight_rom(m, name: str, *, width: int, depth: int, init, slices: int = 1):
    """Add a ``width`` x ``depth`` weight ROM holding ``init`` to module ``m`` as submodules named
    after ``name`` and return its read port (``addr``, ``en``, ``data``; data one cycle after
    the address, held while ``en`` is low).

    With ``slices > 1`` and 2 to :data:`ROM_SLICE_MAX_DEPTH` words, the word is cut into
    ``slices`` equal contiguous slices (``width`` must divide), each a ROM of its own read at its
    own kept copy of the address register (``<name>_addr<k>``). Otherwise one memory, ``name``,
    with a synchronous read port (the Verilog of a deep ROM does not change, nor that of a
    one-word ROM, whose codes are constants that synthesis folds into the multipliers).
    """
    if slices < 1 or width % slices:
        raise ValueError(f"slices must be a positive divisor of the word's {width} bits, "
                         f"not {slices!r}")
    if slices == 1 or not 1 < depth <= ROM_SLICE_MAX_DEPTH:
        m.submodules[name] = mem = Memory(shape=unsigned(width), depth=depth, init=init)
        return mem.read_port(domain="sync")
    port = _SlicedRead(width, depth)
    step = width // slices
    mask = (1 << step) - 1
    parts = []
    for k in range(slices):
        words = [(int(w) >> (k * step)) & mask for w in init]
        m.submodules[f"{name}{k}"] = mem = Memory(shape=unsigned(step), depth=depth, init=words)
        rd = mem.read_port(domain="comb")
        addr = Signal.like(port.addr, name=f"{name}_addr{k}", attrs={"keep": 1})
        with m.If(port.en):
            m.d.sync += addr.eq(port.addr)
        m.d.comb += rd.addr.eq(addr)
        parts.append(rd.data)
    m.d.comb += port.data.eq(Cat(*parts))
    return port
