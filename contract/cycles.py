"""Cycle formulas of the hardware blocks: what each block's test measures and the DSE prices.

Every formula is a block's cycles per frame in steady state: never stalled, input always available,
one frame after another. The blocks in ``hw/`` re-export theirs as ``cycles_per_frame``; the op
modules in :mod:`models.ops` turn a layer's geometry and a :class:`~contract.point.LayerChoice`
into these arguments.

=====================  ==========================================================================
block                  cycles per frame (``B = C_in / lanes``, ``G = C_out / pe``)
=====================  ==========================================================================
stream (FIFO, requant,  ``sites * C / lanes + 1``: one beat per cycle and the end-of-frame beat
residual add)
width converter        ``sites * max(C/a, C/b) + 1``
1x1 unit               ``sites * B * G + 1``
3x3 window blocks      :func:`window_cycles`: input ``B * sites_in`` against output
                       ``B * G * sites_out`` beats, whichever is longer
global average pool    ``sites * B + 1 + B * (div_bits + 3) + 1``
2x2 max pool           ``B * (sites_in + sites_out) + 1``
=====================  ==========================================================================
"""

from __future__ import annotations

__all__ = [
    "stream_cycles",
    "width_cycles",
    "conv1x1_cycles",
    "conv1x1_fill",
    "window_output_size",
    "window_cycles",
    "window_cycle_bounds",
    "sum_bits",
    "div_bits",
    "gap_cycles",
    "gmp_cycles",
    "upsample_cycles",
    "pool_stall",
    "maxpool2_cycles",
]

from .constants import mac_latency


def stream_cycles(*, active_sites: float, channels: int, lanes: int) -> float:
    """A block that moves one beat per cycle (FIFO, requantizer, residual add), never stalled:
    ``active_sites * channels / lanes`` data beats plus the end-of-frame beat; its fill latency
    overlaps the next frame and is not counted."""
    return active_sites * (channels // lanes) + 1


def width_cycles(*, active_sites: float, channels: int, a: int, b: int) -> float:
    """A width converter from ``a`` to ``b`` lanes: ``active_sites * max(C/a, C/b) + 1``."""
    return active_sites * max(channels // a, channels // b) + 1


def conv1x1_cycles(*, active_sites: float, c_in: int, c_out: int, lanes: int, pe: int,
                   input_sites: float | None = None) -> float:
    """The 1x1 unit: ``active_sites * (C_in / lanes) * (C_out / pe)`` MAC cycles plus 1 for the
    end-of-frame beat. At stride 2 the input side also takes (and drops) the beats of the input
    sites off the even grid, one cycle each, overlapping the MACs: ``input_sites * C_in / lanes``
    cycles bound the frame when they are more. A lone frame also pays :func:`conv1x1_fill`, which
    overlaps the previous frame's compute in a stream of frames."""
    b = c_in // lanes
    mac = active_sites * b * (c_out // pe)
    return max(mac, (input_sites or 0) * b) + 1


def conv1x1_fill(*, c_in: int, lanes: int, fmt: str) -> int:
    """Cycles before the 1x1 unit's first MAC of a frame that arrives idle, plus output latency
    (:func:`contract.constants.mac_latency` of ``fmt`` over ``lanes`` products)."""
    return c_in // lanes + mac_latency(fmt, lanes)


def window_output_size(height: int, width: int, stride: int) -> tuple[int, int]:
    """Output map size of a "same" 3x3 window: ``(H, W)`` or ``(ceil(H/2), ceil(W/2))``."""
    if stride not in (1, 2):
        raise ValueError(f"stride must be 1 or 2, not {stride!r}")
    return (-(-height // stride), -(-width // stride))


def window_cycles(*, height: int, width: int, channels: int, lanes: int, stride: int,
                  active_sites: float, output_sites: float | None = None,
                  cycles_per_beat: int = 1, margin: int = 0, burst: bool = False) -> float:
    """A 3x3 window block (line buffer and its MACs), frames back to back, never stalled.

    ``output_sites`` defaults to ``active_sites`` for stride 1 and to
    ``min(active_sites, H_out * W_out)`` for stride 2 (exact for dense maps; a sparse map's
    output can have up to 4 sites per input site, pass the measured count then).
    ``cycles_per_beat`` is ``G``, what the consumer of the window stream spends per window beat
    (1 for depthwise).

    ``margin`` ``p`` (a dense map at stride 1 whose crop is folded into the line buffer,
    :class:`hw.dense_line_buffer.DenseLineBuffer`): only the inner ``(H - 2p) x (W - 2p)`` sites
    are sent, ``G`` cycles a beat; the reader steps over a border site in one cycle a beat, while
    the consumer still works on the last inner beat before it (``G - 1`` cycles, or ``(G - 1) *
    B`` when it takes a site's ``B`` beats in one ``burst``, as the full conv does). Within 3 % of
    the block measured (``tests/hw/test_dense_line_buffer.py``), a few cycles low.
    """
    ho, wo = window_output_size(height, width, stride)
    b = channels // lanes
    if margin:
        g, p = cycles_per_beat, margin
        hold = (g - 1) * (b if burst else 1)
        hi, wi = ho - 2 * p, wo - 2 * p
        n_out = hi * (wi * g * b + max(0, 2 * p * b - hold)) + max(0, 2 * p * wo * b - hold)
        return max(b * height * width, n_out) + 1
    if output_sites is None:
        output_sites = active_sites if stride == 1 else min(active_sites, ho * wo)
    n_in = b * active_sites
    n_out = b * cycles_per_beat * output_sites
    if cycles_per_beat == 1 and n_out >= n_in:
        empty_rows = ho * (1.0 - min(output_sites / (ho * wo), 1.0)) ** wo
        return n_out + 3 + 2 * empty_rows
    return max(n_in, n_out) + 1


def window_cycle_bounds(*, height: int, width: int, channels: int, lanes: int, stride: int,
                        active_sites: int, output_sites: int, cycles_per_beat: int = 1
                        ) -> tuple[int, int]:
    """``(lower, upper)`` bounds on the measured cycles of any frame with no stalls."""
    ho, _ = window_output_size(height, width, stride)
    b = channels // lanes
    n_out = output_sites * cycles_per_beat
    return (b * n_out + 1, b * (active_sites + n_out) + ho + 4)


def sum_bits(*, height: int, width: int, data_width: int = 8) -> int:
    """Bits of a global pool's per-channel sum over a ``height x width`` map."""
    return data_width + (height * width).bit_length()


def div_bits(*, height: int, width: int, data_width: int = 8) -> int:
    """Bits of the pool divider's dividend ``|2*sum + n|`` (+ the ceiling bias), one cycle each."""
    return sum_bits(height=height, width=width, data_width=data_width) + 2


#: Cycles per output beat of the global average pool besides its divide cycles: two load cycles
#: and the output cycle.
GAP_BEAT_OVERHEAD = 3


def gap_cycles(*, active_sites: float, channels: int, lanes: int, height: int, width: int,
               data_width: int = 8) -> float:
    """The global average pool: ``active_sites * C / lanes`` input beats, 1 for the input ``eof``,
    then per output beat (``C / lanes`` of them) two load cycles (the sums, then their magnitude),
    ``div_bits`` divide cycles and one output cycle, and the output ``eof``:
    ``sites * B + 1 + B * (div_bits + 3) + 1``."""
    b = channels // lanes
    d = div_bits(height=height, width=width, data_width=data_width)
    return active_sites * b + 1 + b * (d + GAP_BEAT_OVERHEAD) + 1


def gmp_cycles(*, active_sites: float, channels: int, lanes: int) -> float:
    """The global max pool: ``active_sites * C / lanes`` input beats, 1 for the input ``eof``,
    one cycle per output beat (``C / lanes``) and the output ``eof``: ``sites * B + B + 2``."""
    b = channels // lanes
    return active_sites * b + 1 + b + 1


def upsample_cycles(*, active_in: float, channels: int, lanes: int, rows: float) -> float:
    """The 2x nearest upsample: each input beat leaves four times (its site at ``(2y, 2x)`` and
    ``(2y, 2x + 1)``, then the row again at ``2y + 1``), one beat a cycle, plus a cycle per
    input row with sites (the row's end is seen on the next row's first token) and one for the
    end of frame: ``4 * sites * B + rows + 1``."""
    return 4 * active_in * (channels // lanes) + rows + 1


def pool_stall(producer_cycles: float, out_beats: float, *, channels: int, lanes: int,
               height: int, width: int, fifo_depth: int) -> float:
    """Cycles per frame a global pool's division costs the stage that feeds it.

    The pool takes no input while it divides (``B * (div_bits + 3) + 1`` cycles after the end of
    frame); its producer keeps computing the next frame until the FIFO between them and the
    requantizer are full, about ``fifo_depth + 1`` output beats, and then waits.
    ``producer_cycles`` is the producer's stage cycles per frame and ``out_beats`` its output beats
    per frame; ``channels``, ``lanes``, ``height``, ``width`` are the pool's input stream.
    """
    b = channels // lanes
    tail = b * (div_bits(height=height, width=width) + GAP_BEAT_OVERHEAD) + 1
    per_beat = producer_cycles / max(out_beats, 1.0)
    return max(0.0, tail - (fifo_depth + 1) * per_beat)


def maxpool2_cycles(*, active_in: float, active_out: float, channels: int, lanes: int) -> float:
    """The 2x2 max pool: one cycle per input beat (every active input site, those in a dropped
    odd row or column too), one per output beat (``active_out`` sites of the pooled map) and one
    for the end of frame, ``B * (active_in + active_out) + 1``: input and the row flush never
    overlap, so this holds exactly however sparse the map."""
    for name, v in (("active_in", active_in), ("active_out", active_out)):
        if isinstance(v, bool) or not isinstance(v, int | float) or v < 0:
            raise ValueError(f"{name} must be a non-negative number, not {v!r}")
    if active_out > active_in:
        raise ValueError(f"active_out ({active_out}) cannot exceed active_in ({active_in})")
    if lanes < 1 or channels % lanes:
        raise ValueError(f"lanes ({lanes}) must divide channels ({channels})")
    return (channels // lanes) * (active_in + active_out) + 1


def flatten_cycles(*, height: int, width: int, channels: int, lanes: int) -> float:
    """The flatten (a dense head's input): every site of the ``height x width`` map leaves as
    ``C / lanes`` beats, the missing sites of a sparse frame as zero beats, then the end of frame:
    ``H * W * C / lanes + 1`` cycles per frame, however many sites arrive."""
    if lanes < 1 or channels % lanes:
        raise ValueError(f"lanes ({lanes}) must divide channels ({channels})")
    return height * width * (channels // lanes) + 1


def crop_cycles(*, active_in: float, channels: int, lanes: int) -> float:
    """The crop after a zero-padded conv: one cycle per input beat (kept or dropped) and one for
    the end of frame, ``active_in * C / lanes + 1``."""
    if lanes < 1 or channels % lanes:
        raise ValueError(f"lanes ({lanes}) must divide channels ({channels})")
    return active_in * (channels // lanes) + 1


def concat_cycles(*, active_sites: float, channels: int, lanes: int) -> float:
    """Channel concatenation: one cycle per output beat (``channels`` the output's, both inputs'
    together) and one for the end of frame, ``active_sites * C / lanes + 1``."""
    if lanes < 1 or channels % lanes:
        raise ValueError(f"lanes ({lanes}) must divide channels ({channels})")
    return active_sites * (channels // lanes) + 1
