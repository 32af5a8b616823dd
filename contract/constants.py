"""Block constants the hardware is built with and the DSE prices with: one definition each."""

from __future__ import annotations

__all__ = [
    "WEIGHT_FORMAT_NAMES",
    "ACT_BITS",
    "FIFO_DEPTH",
    "FIFO_MIN_DEPTH",
    "FIFO_LATENCY",
    "MAC_LATENCY",
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

#: Cycles from a MAC unit's last issue (1x1 group, 3x3 window beat) to its output ``valid``.
MAC_LATENCY = 2
#: Cycles from an input beat's acceptance by the requantizer to its output ``valid``.
REQUANT_LATENCY = 3
#: Cycles from the residual add's joined input beat to its output ``valid``.
RESIDUAL_LATENCY = 2
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
