"""Block constants the hardware is built with and the DSE prices with: one definition each."""

from __future__ import annotations

__all__ = [
    "WEIGHT_FORMAT_NAMES",
    "ACT_BITS",
    "FIFO_DEPTH",
    "FIFO_MIN_DEPTH",
    "FIFO_LATENCY",
    "MAC_LATENCY",
    "PRODUCT_STAGES",
    "TREE_LEVELS_PER_STAGE",
    "tree_stages",
    "mac_latency",
    "REQUANT_LATENCY",
    "RESIDUAL_LATENCY",
    "WIDTH_LATENCY",
    "LINE_BUFFER_BANKS",
    "WINDOW_KERNELS",
    "window_banks",
    "LINE_BUFFER_SLOTS",
    "MAXPOOL_LATENCY",
]

#: Weight formats the hardware implements (``models.quant.formats`` holds their value tables).
WEIGHT_FORMAT_NAMES = ("int8", "int4", "dybit4", "dybit8")

#: Activation bits on every stream between layers (docs/CONTRACT.md: W{format}A8).
ACT_BITS = 8

#: Depth, in beats, of the FIFO between two stages (a design point's default ``fifo_depth``).
FIFO_DEPTH = 4
#: Smallest FIFO storage that sustains one beat per cycle.
FIFO_MIN_DEPTH = 3
#: Cycles from a beat's acceptance into an empty FIFO to ``valid`` at its output.
FIFO_LATENCY = 2

#: Cycles of a MAC unit's pipeline that do not depend on its format or size: the weight memory's
#: read (the issue cycle) and the accumulator, which is the output register. The rest is
#: :func:`mac_latency`'s.
MAC_LATENCY = 2

#: Register stages of one weight x activation product once its operands are registered: a
#: multiplier (int formats, a DSP slice) is one; a DyBit shift-add is three (decode the code into
#: sign, run length and mantissa; the shifted copies of the activation; their sum).
PRODUCT_STAGES = {"int8": 1, "int4": 1, "dybit4": 3, "dybit8": 3}

#: Levels of a MAC unit's adder tree between two of its registers (two carry chains of at most
#: ~24 bits fit an 8 ns clock period on ECP5 speed 6: docs/IMPLEMENT.md, "Timing closure").
TREE_LEVELS_PER_STAGE = 2


def tree_stages(products: int) -> int:
    """Register stages of the adder tree that sums ``products`` values (0 for a single one)."""
    if not isinstance(products, int) or products < 1:
        raise ValueError(f"products must be a positive integer, not {products!r}")
    return -(-(products - 1).bit_length() // TREE_LEVELS_PER_STAGE)


def mac_latency(fmt: str, products: int) -> int:
    """Cycles from a MAC unit's issue of a weight word to its accumulator holding the sum of the
    word's ``products`` products (one per accumulator): the memory read, the operand registers,
    :data:`PRODUCT_STAGES`, :func:`tree_stages` and the accumulator."""
    if fmt not in PRODUCT_STAGES:
        raise ValueError(f"unknown weight format {fmt!r}; one of {WEIGHT_FORMAT_NAMES}")
    return MAC_LATENCY + 1 + PRODUCT_STAGES[fmt] + tree_stages(products)
#: Cycles from an input beat's acceptance by the requantizer to its output ``valid``.
REQUANT_LATENCY = 4
#: Cycles from the residual add's joined input beat to its output ``valid``.
RESIDUAL_LATENCY = 4
#: Cycles from the input beat that completes a width converter's output beat to its ``valid``.
WIDTH_LATENCY = 1

#: Column banks of a 3x3 line buffer (the four columns a window reads in one cycle).
LINE_BUFFER_BANKS = 4
#: Row slots of the line buffer: 4 is the minimum (3 rows read, 1 written); 8 lets the writer run
#: up to 6 rows ahead, which absorbs the row-to-row imbalance of sparse maps (a 60x80 map at 20 %
#: density: 1155 -> 1011 cycles at stride 1, 1573 -> 1053 at stride 2) for twice the row memory.
LINE_BUFFER_SLOTS = 8

#: Cycles from the offer of the beat that completes a max-pool output row (a later row's token,
#: or ``eof``) to that row's first output beat: the output register.
MAXPOOL_LATENCY = 1


#: Kernel sizes (each side) of the window convs (line buffer + MACs), "same" padding: 3, 5 and 7
#: square, and odd rectangles up to 11 (a DS-CNN stem's 10x4 kernel is an 11x5 one).
WINDOW_KERNELS = (3, 5, 7, 9, 11)


def window_banks(kernel: int) -> int:
    """Column banks of the line buffer for windows ``kernel`` columns wide: the smallest power of
    two holding them (4 for 3, 8 for 5 and 7, 16 for 9 and 11), so a window's columns are distinct
    banks read in one cycle."""
    if kernel not in WINDOW_KERNELS:
        raise ValueError(f"window kernel must be one of {WINDOW_KERNELS}, not {kernel!r}")
    return LINE_BUFFER_BANKS if kernel <= LINE_BUFFER_BANKS else 1 << (kernel - 1).bit_length()
