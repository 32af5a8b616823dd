"""Shared parts of the resource prices: memories, FIFOs and accumulator widths.

Pure functions of their arguments and of the fitted coefficients (``model``: a
``dse.cost.ResourceModel``, read here only through its attributes).
"""

from __future__ import annotations

import math
from functools import cache

from contract.constants import ACT_BITS

__all__ = ["memory_bram18", "memory", "fifo", "skid", "coord_bits", "acc_bits", "mac_price",
           "mac_key"]

#: BRAM18 aspect ratios (depth, width) of a RAMB18E2 in simple dual-port mode.
BRAM18_SHAPES = ((512, 36), (1024, 18), (2048, 9), (4096, 4), (8192, 2), (16384, 1))


def memory_bram18(width: int, depth: int) -> int:
    """BRAM18 blocks for a ``width`` x ``depth`` memory.

    The word is split into slices, each in its best aspect ratio, the way Yosys maps it: a 19-bit x
    4255 FIFO takes an 18-bit slice (5 blocks of 1K x 18) and a 1-bit slice (1 block of 16K x 1), 6
    blocks, where one aspect ratio for the whole word would take 9.
    """
    if width <= 0 or depth <= 0:
        return 0
    return _sliced_bram18(width, depth)


@cache
def _sliced_bram18(width: int, depth: int) -> int:
    if width <= 0:
        return 0
    if width > _SLICE_BOUND:
        # a wide word is mostly slices of the aspect ratio with the fewest blocks per bit; the
        # search covers the last _SLICE_BOUND bits (and stays shallow: weight ROMs are
        # thousands of bits wide)
        d, w = min(BRAM18_SHAPES, key=lambda s: math.ceil(depth / s[0]) / s[1])
        q = max(1, (width - _SLICE_BOUND) // w)
        return q * math.ceil(depth / d) + _sliced_bram18(width - q * w, depth)
    return min(math.ceil(depth / d) + _sliced_bram18(width - w, depth) for d, w in BRAM18_SHAPES)


#: Widths beyond which :func:`_sliced_bram18` takes whole slices of the best aspect ratio.
_SLICE_BOUND = 36 * 36


#: Distributed-RAM cells (depth, width, LUT sites) Yosys maps a dual-port LUTRAM to, unless the
#: resource model's ``memory.lutram_cells`` names its family's: UltraScale+ RAM32M16 (32 x 14) and
#: RAM64M8 (64 x 7), 8 LUTs each.
XILINX_LUTRAM_CELLS = ((32, 14, 8), (64, 7, 8))


def lutram_cells(model) -> tuple:
    """The family's LUT-RAM cells ``(depth, width, LUT sites)``: the resource model's
    ``memory.lutram_cells``, else :data:`XILINX_LUTRAM_CELLS`."""
    return (model.memory.get("lutram_cells") if model is not None else None) \
        or XILINX_LUTRAM_CELLS


def lutram_luts(model, width: int, depth: int, *, logic: bool = False) -> int:
    """LUT sites of a ``width`` x ``depth`` dual-port LUTRAM in whichever of the family's cells
    takes fewer (ECP5: TRELLIS_DPR16X4, 16 x 4 in 6 LUT4 sites); with ``logic``, and the logic
    that reads and writes one deeper than a cell (:func:`lutram_logic`; the line buffers' and a
    folded conv's beat memories: a pool prices its row buffer's read multiplexers by a fitted
    term of its own, ``per_read_mux``)."""
    cells = lutram_cells(model)
    d, w, luts = min(cells, key=lambda c: c[2] * math.ceil(width / c[1]) * math.ceil(depth / c[0]))
    rows = math.ceil(depth / d)
    return luts * math.ceil(width / w) * rows + (lutram_logic(model, width, rows) if logic else 0)


def lutram_logic(model, width: int, rows: int) -> int:
    """LUTs of a LUT RAM's read multiplexer over its ``rows`` rows of cells and its write-enable
    decode, where the resource model has ``memory.lutram_logic`` (ECP5; fitted by
    ``benchmarks/memory_map.py --write-model``, exact on every LUT RAM of its grid):
    ``per_bit[rows] x width + per_row x rows``, ``per_bit`` tabled by rows (synth_ecp5's muxes
    use the slice's PFUMX / L6MUX21 unevenly: 1, 2, 4, 10, 6 LUT4 per bit at 2, 3, 4, 6, 8 rows),
    interpolated between its entries and grown in proportion to ``rows - 1`` past the last.
    0 for one row of cells or a model without the table."""
    table = model.memory.get("lutram_logic") if model is not None else None
    if not table or rows <= 1:
        return 0
    rs, per = table["rows"], table["per_bit"]
    if rows >= rs[-1]:
        a = per[-1] * (rows - 1) / (rs[-1] - 1)
    else:
        i = next(i for i, r in enumerate(rs) if r >= rows)
        lo_r, lo = (rs[i - 1], per[i - 1]) if i else (1, 0.0)
        a = lo + (per[i] - lo) * (rows - lo_r) / (rs[i] - lo_r)
    return math.ceil(a * width + table["per_row"] * rows)


#: Asynchronous read ports one set of a family's LUT-RAM cells serves besides its write port,
#: unless the resource model's ``memory.lutram_read_ports`` says otherwise: Xilinx RAM32M16 and
#: RAM64M8 have one read-write port and several read-only ones (a max-pool's row buffer with two
#: read ports synthesises in one set on xcup); ECP5's TRELLIS_DPR16X4 has one, so Yosys
#: duplicates the cells for each further read port.
LUTRAM_READ_PORTS = 3


def lutram_copies(model, read_ports: int) -> int:
    """How many copies of a LUT RAM's cells ``read_ports`` asynchronous read ports take."""
    per = (model.memory.get("lutram_read_ports") if model is not None else None) \
        or LUTRAM_READ_PORTS
    return max(1, math.ceil(read_ports / per))


def libmap_choice(model, width: int, depth: int, *, rom: bool, lib: dict | None = None,
                  no_rw_check: bool = False) -> str | None:
    """Where synthesis puts a ``width`` x ``depth`` memory read through a register: ``"bram"``,
    ``"lutram"`` or ``"logic"``, by the cost rule of Yosys' ``memory_libmap`` with the family's
    cell costs (``memory.libmap`` of the resource model; ``None`` for a family without one, which
    keeps its depth thresholds).

    Each mapping is priced as Yosys prices it: a block RAM ``block_cost`` per BRAM18 plus
    ``block_extra`` (its port emulation); LUT RAM (RAMs only: Yosys keeps ROMs out of it)
    ``lutram_cell_cost`` per cell, plus ``mux`` per read-data bit and extra row of cells and
    ``demux`` per row of cells for the write enables; logic ``logic_cost_rom`` (or
    ``logic_cost_ram``) per bit, which wins ties. On ECP5 (``benchmarks/memory_map.py``: 315
    memories of 4-576 bits x 8-4096 words, each synthesised alone with synth_ecp5) it names the
    mapping and the EBR count of all 315, where the old depth thresholds missed 42: a 576-bit x
    64-word weight ROM is 16 EBRs, not 2,304 LUT4s; a 64-bit x 64-word line buffer bank 2 EBRs,
    not 16 TRELLIS_DPR16X4. ``lib``: these costs instead of ``memory.libmap`` (the Xilinx
    model's ``memory.ram_libmap``, :func:`memory`); its ``cell`` is the LUT RAM cell the rule
    counts (default the family's one ``lutram_cells``).

    ``no_rw_check``: a RAM whose reads never meet a write of the same word, marked so for Yosys
    (``hw.fifo``'s storage, ``hw.dense_line_buffer``'s rows): a block RAM needs none of the
    logic that gives a read the old word on such a collision, and costs
    ``block_extra_no_rw_check`` instead of ``block_extra`` where the rule has it
    (``benchmarks/memory_map.py``'s ``ramnrw`` memories).

    A ``lib`` with ``cells`` (``[depth, width, cost]`` each: the Xilinx LUT RAMs, whose Yosys
    library scales a cell's cost by the bits of its width it holds, ``widthscale``) prices LUT
    RAM in the cheaper of its cells: ``cost * width / cell width`` per row of cells, plus the
    read mux and write demux above. Fitted to where synth_xilinx puts 40 RAMs of 4-32 bits x
    64-768 words on each of xcup and xc7 (every one placed as Yosys placed it; with whole cells
    counted, no one read-mux cost fits that grid): ``reports/dse_check.md``."""
    if lib is None:
        lib = model.memory.get("libmap") if model is not None else None
    if not lib:
        return None
    bits = width * depth
    logic = int(bits * lib["logic_cost_rom" if rom else "logic_cost_ram"])
    extra = lib["block_extra"]
    if no_rw_check and not rom:
        extra = lib.get("block_extra_no_rw_check", extra)
    cost = {"bram": lib["block_cost"] * memory_bram18(width, depth) + extra}
    if not rom:
        def lutram(cd: int, per_row: float) -> float:
            # the cells, the read multiplexer over their rows, the write-enable decoder
            rows = math.ceil(depth / cd)
            return (per_row * rows + lib["mux"] * (rows - 1) * width
                    + (lib["demux"] * rows if rows > 1 else 0))
        if "cells" in lib:
            cost["lutram"] = min(lutram(cd, c * width / cw) for cd, cw, c in lib["cells"])
        else:
            cd, cw = lib.get("cell") or model.memory["lutram_cells"][0][:2]
            cost["lutram"] = lutram(cd, lib["lutram_cell_cost"] * math.ceil(width / cw))
    best = min(cost, key=cost.get)
    return best if cost[best] < logic else "logic"


def dual_port_memory(model, width: int, depth: int, *, no_rw_check: bool = False
                     ) -> tuple[int, int]:
    """(LUTs, BRAM18) of a dual-port RAM (a line buffer bank, read through a register): LUTRAM
    cells and their read and write logic (:func:`lutram_luts`), or block RAM where the family's
    mapping rule puts it (:func:`rule_choice`: ECP5's ``memory.libmap``, UltraScale+'s
    ``memory.ram_libmap``; without one, beyond ``memory.lutram_max_depth`` words;
    ``no_rw_check``: :func:`libmap_choice`)."""
    choice = rule_choice(model, width, depth, rom=False, no_rw_check=no_rw_check)
    if choice is None:
        limit = model.memory.get("lutram_max_depth") if model is not None else None
        choice = "bram" if limit is not None and depth > limit else "lutram"
    if choice == "bram":
        return 0, memory_bram18(width, depth)
    return lutram_luts(model, width, depth, logic=True), 0


def rule_choice(model, width: int, depth: int, *, rom: bool, no_rw_check: bool = False
                ) -> str | None:
    """:func:`libmap_choice` under the family's rule for this kind of memory: ``memory.libmap``
    for both (ECP5), or ``memory.ram_libmap`` (UltraScale+) for RAMs, and for ROMs where it has a
    ``logic_cost_rom`` (a 69-bit x 76-word FIFO is 2 RAMB18E2, where the depth thresholds said
    LUT RAM; a 32-bit x 384-word ROM is one RAMB18E2, where the 16 Kb bound said LUTs, and a
    64-bit x 256-word one, at the bound, 256 LUTs; dse/resource_model.json,
    reports/dse_check.md). None where the family has no rule (the thresholds then decide)."""
    choice = libmap_choice(model, width, depth, rom=rom, no_rw_check=no_rw_check)
    lib = model.memory.get("ram_libmap") if model is not None else None
    if choice is None and lib and (not rom or "logic_cost_rom" in lib):
        choice = libmap_choice(model, width, depth, rom=rom, lib=lib, no_rw_check=no_rw_check)
    return choice


def memory(model, width: int, depth: int, *, rom: bool = False, no_rw_check: bool = False
           ) -> tuple[int, int]:
    """(LUTs, BRAM18) of a memory read through a register (``rom``: a weight or bias ROM): LUTs
    when small, block RAM otherwise (:func:`rule_choice` where the family has a rule)."""
    bits = width * depth
    if bits <= 0:
        return 0, 0
    choice = rule_choice(model, width, depth, rom=rom, no_rw_check=no_rw_check)
    if choice is None:
        # Yosys keeps shallow memories (wide weight words) in LUTs even when large; block RAM
        # from ``memory.bram_min_depth`` words (synth_xilinx: a 576-bit x 256 weight ROM in 16
        # RAMB18E2, 576 x 128 in LUTs, so 256; default one BRAM18's depth at its widest aspect)
        shallow = model.memory.get("bram_min_depth", BRAM18_SHAPES[0][0])
        small = bits <= model.memory["lutram_max_bits"] or depth < shallow
        choice = "lutram" if small else "bram"
    if choice == "bram":
        return 0, memory_bram18(width, depth)
    per_lut = model.memory["lutram_bits_per_lut"]
    if rom:
        # a ROM in logic is a multiplexer tree over every address: a 192-word one takes the
        # LUTs of 256 words (synth_xilinx: 96 x 192 bits in 384 LUTs, as 96 x 256; synth_ecp5:
        # 96 x 48 in 384 LUT4s, as 96 x 64)
        depth = 1 << (depth - 1).bit_length()
    return math.ceil(width * math.ceil(depth / per_lut)), 0


def mac_key(fmt: str, datapath: str) -> str:
    """The resource model's ``mac`` entry of a (format, datapath): the format's name for its
    default datapath (``int8``: one product per DSP), ``"<format>/<datapath>"`` otherwise."""
    from contract.constants import default_datapath

    return fmt if datapath == default_datapath(fmt) else f"{fmt}/{datapath}"


def mac_price(model, fmt: str, datapath: str, *, constant: bool = False) -> dict:
    """``{"lut", "ff", "dsp"}`` of one product and its share of the adder tree, for ``fmt`` on
    ``datapath`` (fitted coefficients; a packed pair's DSP is half a DSP per product).
    ``constant``: the product's weight is a constant (a one-word weight ROM), which synthesis
    folds into the multiplier: the ``"<key>@const"`` entry where the fit has one."""
    key = mac_key(fmt, datapath)
    if constant and f"{key}@const" in model.mac:
        return model.mac[f"{key}@const"]
    try:
        return model.mac[key]
    except KeyError:
        raise ValueError(f"the resource model has no MAC coefficients for {key}; refit it with "
                         "benchmarks/fit_resources.py") from None


#: A skid buffer (``hw/skid.py``) of ``w`` bits as Yosys maps it, the same in xcup, xc7 and ecp5
#: (synthesised alone at 16, 64 and 200 bits): a 2:1 multiplexer and a register per bit, and its
#: two state flip-flops with their logic. Priced structurally, as the FIFO's register slice: the
#: network fit's FIFO terms were fitted before the FIFOs had either.
SKID_LUT = (4, 1)   # (base, per bit)
SKID_FF = (2, 1)


def skid(width: int) -> dict:
    """``{"lut", "ff"}`` of a skid buffer on ``width`` payload bits."""
    return {"lut": SKID_LUT[0] + SKID_LUT[1] * width, "ff": SKID_FF[0] + SKID_FF[1] * width}


#: A register slice (``hw/slice.py``) of ``w`` bits as Yosys maps it (alone at 16, 64 and 200
#: bits: xcup and xc7 w + 8 LUT, ecp5 w + 9; 2 w + 3 FF in all three): a 2:1 multiplexer before
#: the main register, the main and the spare registers, and three state flip-flops.
SLICE_LUT = (9, 1)   # (base, per bit)
SLICE_FF = (3, 2)


def register_slice(width: int) -> dict:
    """``{"lut", "ff"}`` of a register slice on ``width`` payload bits."""
    return {"lut": SLICE_LUT[0] + SLICE_LUT[1] * width,
            "ff": SLICE_FF[0] + SLICE_FF[1] * width}


def fifo_output(width: int) -> dict:
    """``{"lut", "ff"}`` of what follows a FIFO's storage: its read register (``width`` data bits,
    a valid bit, its enable's LUT) and its register slice (:func:`register_slice`)."""
    s = register_slice(width)
    return {"lut": s["lut"] + 1, "ff": s["ff"] + width + 1}


def fifo(model, width: int) -> dict:
    """``{"lut", "ff"}`` of a stage FIFO ``width`` bits wide (the network fit's terms) and what
    follows its storage (:func:`fifo_output`)."""
    f = (model.stage or {}).get("fifo")
    out = fifo_output(width)
    if not f:
        return {"lut": float(out["lut"]), "ff": float(out["ff"])}
    return {r: f[r]["base"] + f[r]["per_bit"] * width + out[r] for r in ("lut", "ff")}


def coord_bits(in_shape) -> int:
    """Bits of a token's ``(y, x)`` on a ``(C, H, W)`` map."""
    _, h, w = in_shape
    return max(1, (h - 1).bit_length()) + max(1, (w - 1).bit_length())


def stream_bits(lanes: int, coords: int, bits: int = ACT_BITS) -> int:
    """Width of a token stream beat: ``lanes`` activations of ``bits`` bits, ``coords`` coordinate
    bits, ``eof``."""
    return lanes * bits + coords + 1


def acc_bits(*, fan_in: int, fmt) -> int:
    """Bound on the accumulator's width: int8 activations times the format's largest weight over
    the fan-in, plus the bias and the sign (what the composer sizes the requantizer by)."""
    from models.quant.formats import weight_format

    wmax = max(abs(int(v)) for v in weight_format(fmt).levels)
    return math.ceil(math.log2(127 * wmax * fan_in + 1)) + 2


def join_fifos(model, stage: dict, *, lanes: int, coord_bits: int) -> dict:
    """A two-input join's FIFOs: one per input, and the skip FIFO that holds the other branch's
    ``stage["skip_sites"]`` sites (``{"lut", "ff", "dsp", "bram18"}``)."""
    res = {"lut": 0.0, "ff": 0.0, "dsp": 0.0, "bram18": 0}
    bits = stream_bits(lanes, coord_bits, stage.get("bits", ACT_BITS))
    for _ in range(2):
        f = fifo(model, bits)
        res["lut"] += f["lut"]
        res["ff"] += f["ff"]
    skip = skip_fifo(model, stage, lanes=lanes, coord_bits=coord_bits)
    res["lut"] += skip["lut"]
    res["bram18"] += skip["bram18"]
    return res


def skip_fifo(model, stage: dict, *, lanes: int, coord_bits: int) -> dict:
    """The memory of a join's skip FIFO on the stream of ``stage``'s layer (``lanes`` wide):
    ``stage["skip_sites"]`` sites of ``C / lanes`` beats (``{"lut", "bram18"}``; none without
    ``skip_sites``: the FIFO sits on the join's other input)."""
    bits = stream_bits(lanes, coord_bits, stage.get("bits", ACT_BITS))
    depth = stage.get("skip_sites", 0) * math.ceil(stage["in_shape"][0] / lanes)
    lut_m, bram_m = memory(model, bits, depth, no_rw_check=True)  # hw.fifo's storage
    return {"lut": lut_m, "bram18": bram_m}
