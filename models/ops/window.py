"""Shared by the 3x3 window ops (full and depthwise conv): the line buffer's cycles, tail, hold
and LUTRAM price."""

from __future__ import annotations

import math
from dataclasses import replace

from contract.constants import (
    ACT_BITS,
    LINE_BUFFER_SLOTS,
    MAC_LATENCY,
    REQUANT_LATENCY,
    SKID_BEATS,
    WINDOW_STAGES,
    dense_history_columns,
    dense_row_slots,
    line_buffer_ram,
    mac_latency,
    requant_sites,
    window_banks,
)
from contract.cycles import window_cycles

from . import _price
from .base import ComputeOp, kernel_hw, sites

__all__ = ["WindowOp"]


class WindowOp(ComputeOp):
    """A conv whose block reads 3x3 windows from a line buffer (stride 1 or 2, "same")."""

    node_op = "conv"
    kernel = 3

    def products(self, layer, choice, taps: int) -> int:
        """Products summed into one accumulator per cycle: a full conv's ``lanes x taps`` (its
        kernel rows spread over ``kfold`` cycles)."""
        return choice.lanes * taps // choice.kfold

    def group_cycles(self, layer, choice) -> int:
        """Cycles the MACs spend per window beat (``G``): each output group's kernel rows over
        ``kfold`` cycles."""
        return layer.out_shape[0] // choice.pe * choice.kfold

    def check_choice(self, layer, choice) -> None:
        super().check_choice(layer, choice)
        kh = kernel_hw(layer)[0]
        if choice.kfold not in self.kfolds(layer):
            raise ValueError(f"kfold {choice.kfold} is not one of {self.kfolds(layer)} for a "
                             f"{kh}-row window")

    def kfolds(self, layer) -> tuple[int, ...]:
        """Row folds the block takes: 1, or one kernel row per cycle."""
        kh = kernel_hw(layer)[0]
        return (1, kh) if kh > 1 else (1,)

    def candidates(self, layer, formats, *, max_lanes=64, max_pe=64, count=6, datapaths=None):
        base = super().candidates(layer, formats, max_lanes=max_lanes, max_pe=max_pe,
                                  count=count, datapaths=datapaths)
        folded = [replace(c, kfold=f) for c in base for f in self.kfolds(layer)[1:]]
        return base + [c for c in folded if self._takes(layer, c)]

    neighbour_stats = True

    def check_geometry(self, layer) -> None:
        if layer.stride not in (1, 2):
            raise ValueError(f"unsupported stride {layer.stride}")

    #: The block takes a site's window beats back to back and then works on them (``G - 1``
    #: cycles a beat after the last): the full conv. A depthwise one holds after each beat.
    burst = False

    def cycles(self, layer, choice, stats, *, lanes=None, margin=None) -> float:
        """``margin``: the border the block leaves to a folded crop (default the layer's own,
        :attr:`dse.workload.LayerWork.margin`; a graph node has none: pass
        :func:`models.ops.crop.folded_margin`)."""
        c_in, h, w = layer.in_shape
        return window_cycles(height=h, width=w, channels=c_in, lanes=choice.lanes,
                             stride=layer.stride, active_sites=sites(stats, "active_in_mean"),
                             output_sites=sites(stats),
                             cycles_per_beat=self.group_cycles(layer, choice),
                             margin=getattr(layer, "margin", 0) if margin is None else margin,
                             burst=self.burst)

    def pipeline(self, layer, choice) -> int:
        # the line buffer's output stages, the MAC unit (its issue and accumulator, products and
        # tree) and the requantizer
        taps = kernel_hw(layer)[0] * kernel_hw(layer)[1]
        mac = mac_latency(choice.format, self.products(layer, choice, taps), choice.datapath)
        rq = REQUANT_LATENCY if self.requantized(layer) else 0
        return MAC_LATENCY + mac + rq + self._window_stages(layer)

    @staticmethod
    def _window_stages(layer) -> int:
        return WINDOW_STAGES[bool(getattr(layer, "dense", False))]

    def tail(self, layer, choice, stats, *, lanes=None) -> float:
        # stride 1: the last two output rows (the emitter runs a row behind the writer);
        # stride 2: the last input row and the last output row; then the block's pipeline
        _, h, _ = layer.in_shape
        b, g = self.beats(layer, choice), self.group_cycles(layer, choice)
        row_out = sites(stats) / layer.out_shape[1]
        p = getattr(layer, "margin", 0)
        if p:
            # a row's inner sites at the consumer's pace, its border at one cycle a beat
            w_out = layer.out_shape[2]
            row_out = (w_out - 2 * p) + 2 * p / g
        if layer.stride == 1:
            # the last k//2 + 1 output rows wait for the end of frame
            rows = kernel_hw(layer)[0] // 2 + 1
            return rows * row_out * b * g + self.pipeline(layer, choice)
        row_in = sites(stats, "active_in_mean") / h
        return row_in * b + row_out * b * g + self.pipeline(layer, choice)

    def hold(self, layer, *, beats: int = 1, slots: int | None = None) -> int:
        # the writer may run slots - 1 - k//2 rows ahead of the emitter's centre row, which
        # still needs k//2 rows above it: (slots - 1) rows, plus the window/compute pipeline
        # (2 sites, one more for a second window stage), the requantizer and the skid
        # buffers after the line buffer and before the requantizer (a beat each)
        slots = LINE_BUFFER_SLOTS if slots is None else slots
        return ((slots - 1) * layer.in_shape[2] + 1 + self._window_stages(layer)
                + requant_sites(beats) + 2 * SKID_BEATS)

    def resource_block(self, layer) -> str:
        """The resource model's block entry: a dense network's window blocks (on the dense line
        buffer) have their own fit, ``<kind>_dense``."""
        return self.resource_key + ("_dense" if getattr(layer, "dense", False) else "")

    def line_buffer_memory(self, layer, choice, model=None) -> tuple[int, int]:
        """(LUTs, BRAM18) of the line buffer as Yosys maps it.

        Sparse (:class:`hw.line_buffer.LineBuffer`): ``slots x banks`` column-bank memories of
        ``ceil(W/banks) * B`` words of ``lanes * 8`` bits, each in the family's LUTRAM cells or
        block RAM as its Yosys mapping rule puts it (:func:`_price.dual_port_memory`; on
        UltraScale+ RAM32M16 or RAM64M8, exact on the digits and event-digits builds; on ECP5
        TRELLIS_DPR16X4, or an EBR beyond 128 words).

        Dense (:class:`hw.dense_line_buffer.DenseLineBuffer`): a row memory per slot (two at
        stride 2, by column parity) of ``W * B`` words, in block RAM where
        :func:`contract.constants.line_buffer_ram` asks for it, else where the family's rule puts
        it (:func:`_price.dual_port_memory`), and the per-beat history (``B``
        words of ``history columns x kh x lanes x in_bits`` bits in LUTRAM; registers when
        ``B = 1``, which the block's fit prices)."""
        if getattr(layer, "dense", False):
            return self._dense_line_buffer_memory(layer, choice, model)
        width = choice.lanes * getattr(layer, "in_bits", ACT_BITS)
        banks = window_banks(kernel_hw(layer)[1])
        cols, b = math.ceil(layer.in_shape[2] / banks), math.ceil(layer.in_shape[0] / choice.lanes)
        depth = cols * b
        declared = cols << (b - 1).bit_length()  # the block addresses (column, beat) by bits
        if line_buffer_ram(width, declared) == "bram":
            luts, bram = 0, _price.memory_bram18(width, declared)
        else:
            # a family priced by Yosys' mapping rule sees the memory as declared
            libmap = model is not None and model.memory.get("libmap")
            luts, bram = _price.dual_port_memory(model, width, declared if libmap else depth)
        return LINE_BUFFER_SLOTS * banks * luts, LINE_BUFFER_SLOTS * banks * bram

    def _dense_line_buffer_memory(self, layer, choice, model) -> tuple[int, int]:
        kh, kw = kernel_hw(layer)
        c, _, w = layer.in_shape
        width = choice.lanes * getattr(layer, "in_bits", ACT_BITS)
        b = math.ceil(c / choice.lanes)
        depths = [w * b] if layer.stride == 1 else [math.ceil(w / 2) * b, (w // 2) * b]
        luts = bram = 0
        for depth in depths:
            if depth == 0:
                continue
            if line_buffer_ram(width, depth) == "bram":
                bram += _price.memory_bram18(width, depth)
            else:
                # its rows are marked no_rw_check (hw.dense_line_buffer): a block RAM needs no
                # read-during-write logic, which moves Yosys' choice towards it
                lut_m, bram_m = _price.dual_port_memory(model, width, depth, no_rw_check=True)
                luts, bram = luts + lut_m, bram + bram_m
        slots = dense_row_slots(kh)
        luts, bram = slots * luts, slots * bram
        if b > 1:
            hist = dense_history_columns(kw, layer.stride) * kh * width
            luts += _price.lutram_luts(model, hist, b, logic=True)
        return luts, bram

    def line_buffer_registers(self, layer, choice) -> int:
        """Flip-flops of the dense line buffer's second output stage: every row memory's read
        word, registered as it leaves the memory (the block fits predate it)."""
        if not getattr(layer, "dense", False):
            return 0
        width = choice.lanes * getattr(layer, "in_bits", ACT_BITS)
        return dense_row_slots(kernel_hw(layer)[0]) * layer.stride * width

    def block_skid_bits(self, layer, choice) -> list[int]:
        """The skid buffer after the line buffer: a window beat of ``kh x kw x lanes``
        activations, its tap mask, coordinates and beat index."""
        kh, kw = kernel_hw(layer)
        c = layer.in_shape[0]
        window = (kh * kw * (choice.lanes * getattr(layer, "in_bits", ACT_BITS) + 1)
                  + _price.coord_bits(layer.out_shape)
                  + max(1, (math.ceil(c / choice.lanes) - 1).bit_length()) + 1)
        return [window]

    def line_buffer_luts(self, layer, choice, model=None) -> int:
        """LUTs of the line buffer (:meth:`line_buffer_memory`)."""
        return self.line_buffer_memory(layer, choice, model)[0]

    def bitmap_columns(self, layer) -> int:
        """The sparse line buffer (:class:`hw.line_buffer.LineBuffer`) keeps an occupancy bitmap
        of the map's width per row slot; the dense one keeps none."""
        return 0 if getattr(layer, "dense", False) else layer.in_shape[2]
