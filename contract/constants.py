"""Block constants the hardware is built with and the DSE prices with: one definition each."""

from __future__ import annotations

__all__ = [
    "WEIGHT_FORMAT_NAMES",
    "ACT_BITS",
    "act_width",
    "FIFO_DEPTH",
    "FIFO_MIN_DEPTH",
    "FIFO_LATENCY",
    "SKID_BEATS",
    "FIFO_SLICE_BEATS",
    "MAC_LATENCY",
    "DATAPATHS",
    "WEIGHT_BITS",
    "DSP_WIDE_BITS",
    "datapaths",
    "default_datapath",
    "pack_shift",
    "packed_width",
    "PRODUCT_STAGES",
    "TREE_LEVELS_PER_STAGE",
    "tree_stages",
    "mac_latency",
    "REQUANT_LATENCY",
    "requant_sites",
    "RESIDUAL_LATENCY",
    "WIDTH_LATENCY",
    "ROM_SLICE_MAX_DEPTH",
    "LINE_BUFFER_BANKS",
    "WINDOW_KERNELS",
    "window_banks",
    "LINE_BUFFER_SLOTS",
    "LB_BRAM_BITS",
    "line_buffer_ram",
    "dense_row_slots",
    "dense_lag_steps",
    "dense_history_columns",
    "MAXPOOL_LATENCY",
    "ACT_LATENCY",
    "window_max_latency",
    "WINDOW_STAGES",
]

#: Weight formats the hardware implements (``models.quant.formats`` holds their value tables).
WEIGHT_FORMAT_NAMES = ("int8", "int4", "dybit4", "dybit8")

#: Activation bits of a stream whose range is the full int8 one (docs/CONTRACT.md: W{format}A8);
#: a tensor with a narrower range travels in :func:`act_width` bits.
ACT_BITS = 8


def act_width(lo: int, hi: int) -> int:
    """Bits of a signed stream lane that holds every integer of ``[lo, hi]`` (at least 2): a
    tensor's stream width (docs/CONTRACT.md, "Stream widths"). 4-bit unsigned ``[0, 15]`` takes
    5, 4-bit signed narrow ``[-7, 7]`` 4, int8 ``[-127, 127]`` and ``[0, 127]`` 8, 8-bit unsigned
    ``[0, 255]`` 9."""
    lo, hi = int(lo), int(hi)
    if lo > hi:
        raise ValueError(f"empty range [{lo}, {hi}]")
    return max(2, 1 + max(hi.bit_length(), (-lo - 1).bit_length() if lo < 0 else 0))

#: Depth, in beats, of the FIFO between two stages (a design point's default ``fifo_depth``).
FIFO_DEPTH = 4
#: Smallest FIFO storage that sustains one beat per cycle.
FIFO_MIN_DEPTH = 3
#: Cycles from a beat's acceptance into an empty FIFO to ``valid`` at its output (its storage's
#: two, its read register's one and its output register slice's one).
FIFO_LATENCY = 4
#: Beats a FIFO holds after its storage: its read register's one and its output register
#: slice's two (``hw/fifo.py``, ``hw/slice.py``: registered ``ready``, ``valid`` and payload
#: after every FIFO).
FIFO_SLICE_BEATS = 3
#: Beats a skid buffer holds (``hw/skid.py``: the registered ``ready`` after a window conv's line
#: buffer and between a MAC unit and its requantizer); it adds no latency.
SKID_BEATS = 1
#: Input beats a site from which a full k x k conv keeps the window beats its later output
#: groups and row steps re-read in LUT RAM rather than registers (``hw/conv3x3.py``): with
#: ``B`` beats, registers cost ``B`` flip-flops a window bit and a ``B:1`` read mux, LUT RAM a
#: fraction of a LUT a bit up to its cell depth (32 on AMD, 16 on ECP5) and a 2:1 mux.
BEAT_BUFFER_RAM_BEATS = 4

#: The folds of a depthwise 3x3 block (``hw.dwconv``, ``models.ops.dwconv3x3``): a channel's 9
#: taps in 1 cycle, 3 (a kernel row a cycle) or 9 (a tap a cycle), with 9, 3 or 1 multipliers.
DW_KFOLDS = (1, 3, 9)

#: Cycles of a MAC unit's pipeline that do not depend on its format or size: the weight memory's
#: read (the issue cycle) and the accumulator, which is the output register. The rest is
#: :func:`mac_latency`'s.
MAC_LATENCY = 2

#: Bits of a weight code, per format.
WEIGHT_BITS = {"int8": 8, "int4": 4, "dybit4": 4, "dybit8": 8}

#: Multiplier datapaths a compute layer's products can be built with; the DSE chooses one per
#: layer (docs/CONTRACT.md, "Datapaths"):
#:
#: - ``"dsp"``: one product per DSP slice (an int format's ``*``);
#: - ``"dsp2"``: two products per DSP slice, those of two output channels that share one
#:   activation: the slice multiplies the packed operand ``w_hi * 2^s + w_lo`` by the activation
#:   and the two products are sliced apart (:func:`pack_shift`; ``hw/mult.py``);
#: - ``"lut"``: a multiplier in LUTs (Booth partial products), for weights of at most 4 bits;
#: - ``"shift-add"``: DyBit's decode and shift-add in LUTs (the DyBit formats' only datapath).
DATAPATHS = ("dsp", "dsp2", "lut", "shift-add")

#: Width of the DSP slice's wider multiplier operand (DSP48E2 27 x 18, DSP48E1 25 x 18, ECP5
#: MULT18X18D 18 x 18): a packed operand must fit it.
DSP_WIDE_BITS = {"DSP48E2": 27, "DSP48E1": 25, "MULT18X18D": 18}


def pack_shift(wbits: int, abits: int) -> int:
    """``s``: the low product of a packed pair sits in the ``s`` low bits of the slice's product.
    A narrow-range ``wbits``-bit weight times a signed ``abits``-bit activation is below
    ``2^(wbits + abits - 2)`` in magnitude, so it and its sign fit ``wbits + abits - 1`` bits."""
    return wbits + abits - 1


def packed_width(wbits: int, abits: int) -> int:
    """Signed bits of the packed operand ``w_hi * 2^s + w_lo``."""
    return wbits + pack_shift(wbits, abits)


def datapaths(fmt: str, *, dsp_cell: str | None = None, abits: int = 9) -> tuple[str, ...]:
    """The datapaths a layer in weight format ``fmt`` can use: DyBit only its shift-add; int
    formats one product per DSP, two per DSP where the packed operand fits ``dsp_cell``'s wider
    port (``None``: any Xilinx slice; ``abits``: the widest activation, 9 for 8-bit unsigned
    streams), and LUT multipliers for weights of at most 4 bits."""
    if fmt not in WEIGHT_BITS:
        raise ValueError(f"unknown weight format {fmt!r}; one of {WEIGHT_FORMAT_NAMES}")
    if fmt.startswith("dybit"):
        return ("shift-add",)
    out = ["dsp"]
    wide = DSP_WIDE_BITS.get(dsp_cell or "DSP48E1", 0)
    if packed_width(WEIGHT_BITS[fmt], abits) <= wide:
        out.append("dsp2")
    if WEIGHT_BITS[fmt] <= 4:
        out.append("lut")
    return tuple(out)


def default_datapath(fmt: str) -> str:
    """The datapath a choice without one means: ``"dsp"`` for int formats, DyBit's shift-add."""
    return "shift-add" if str(fmt).startswith("dybit") else "dsp"


#: Register stages of one weight x activation product once its operands are registered, per
#: datapath: a DSP multiply (one product or a packed pair) is one; so is a LUT multiplier (two
#: Booth rows and their sum: a few LUT levels and one carry chain); a DyBit shift-add is three
#: (decode the code into sign, run length and mantissa; the shifted copies of the activation; their
#: sum).
PRODUCT_STAGES = {"dsp": 1, "dsp2": 1, "lut": 1, "shift-add": 3}

#: Levels of a MAC unit's adder tree between two of its registers (two carry chains of at most
#: ~24 bits fit an 8 ns clock period on ECP5 speed 6: docs/IMPLEMENT.md, "Timing closure").
TREE_LEVELS_PER_STAGE = 2


def tree_stages(products: int) -> int:
    """Register stages of the adder tree that sums ``products`` values (0 for a single one)."""
    if not isinstance(products, int) or products < 1:
        raise ValueError(f"products must be a positive integer, not {products!r}")
    return -(-(products - 1).bit_length() // TREE_LEVELS_PER_STAGE)


def mac_latency(fmt: str, products: int, datapath: str | None = None) -> int:
    """Cycles from a MAC unit's issue of a weight word to its accumulator holding the sum of the
    word's ``products`` products (one per accumulator): the memory read, the operand registers,
    :data:`PRODUCT_STAGES` of the ``datapath`` (default: the format's,
    :func:`default_datapath`), :func:`tree_stages` and the accumulator."""
    if fmt not in WEIGHT_BITS:
        raise ValueError(f"unknown weight format {fmt!r}; one of {WEIGHT_FORMAT_NAMES}")
    datapath = datapath or default_datapath(fmt)
    if datapath not in PRODUCT_STAGES:
        raise ValueError(f"unknown datapath {datapath!r}; one of {DATAPATHS}")
    return MAC_LATENCY + 1 + PRODUCT_STAGES[datapath] + tree_stages(products)


#: Cycles from an input beat's acceptance by the requantizer to its output ``valid``: the beat
#: and its ROM word, the multipliers' operands, the products, the rounding add, the split
#: products' sum, the shift and clamp (``hw/requant.py``).
REQUANT_LATENCY = 6


def requant_sites(beats: int = 1) -> int:
    """Sites a requantizer holds in flight (its :data:`REQUANT_LATENCY` beats) on a stream of
    ``beats`` beats per site: its share of a stage's ``hold`` (``beats`` unknown: 1, the most)."""
    return -(-REQUANT_LATENCY // max(1, int(beats)))
#: Cycles from the residual add's joined input beat to its output ``valid``.
RESIDUAL_LATENCY = 4
#: Cycles from the input beat that completes a width converter's output beat to its ``valid``.
WIDTH_LATENCY = 1

#: Words of the deepest weight ROM that a MAC unit reads in slices, each at its own copy of the
#: address register (``hw/weight_rom.py``): up to here a ROM is logic on every family (ECP5's
#: mapping rule puts a 1,200-bit x 32 ROM in logic, x 64 in block RAM; UltraScale+ keeps
#: ROMs under 256 words in LUTs), where Yosys merges equal code bits across the whole MAC array.
ROM_SLICE_MAX_DEPTH = 32

#: Column banks of a 3x3 line buffer (the four columns a window reads in one cycle).
LINE_BUFFER_BANKS = 4
#: Row slots of the line buffer: 4 is the minimum (3 rows read, 1 written); 8 lets the writer run
#: up to 6 rows ahead, which absorbs the row-to-row imbalance of sparse maps (a 60x80 map at 20 %
#: density: 1155 -> 1011 cycles at stride 1, 1573 -> 1053 at stride 2) for twice the row memory.
LINE_BUFFER_SLOTS = 8

#: A line buffer memory (a sparse one's row-slot bank, a dense one's row slot) goes to block RAM
#: from this many bits: 4 Kb in LUTRAM is about 75 LUT6 on UltraScale+, a BRAM18 holds 18 Kb.
#: Below it the family's synthesis chooses, by Yosys' memory_libmap costs, and the price follows
#: the same rule (``models.ops._price.rule_choice``): an 8-bit x 384-word row is a BRAM18 on
#: both AMD families, 16 x 192 LUT RAM on UltraScale+ and a BRAM18 on the 7 series.
LB_BRAM_BITS = 4096


def dense_row_slots(kh: int) -> int:
    """Row slots of the dense line buffer for a window ``kh`` rows high: the smallest power of
    two ``>= kh + 1``."""
    return 1 << kh.bit_length()


def dense_lag_steps(kw: int, stride: int) -> int:
    """Steps the dense line buffer's emitter runs behind its reader: ``kw // 2`` at stride 1,
    ``kw // 4`` at stride 2 (a step reads ``stride`` columns)."""
    return kw // 2 if stride == 1 else (kw // 2) // 2


def dense_history_columns(kw: int, stride: int) -> int:
    """Window columns the dense line buffer keeps per beat in its history: ``kw - 1`` at stride
    1; at stride 2 ``kw - 2``, or ``kw - 1`` when ``kw // 2`` is even (a step reads an even and an
    odd column)."""
    return stride * dense_lag_steps(kw, stride) + kw // 2


#: Stages of a window generator between its input and its window beats: the sparse line
#: buffer's five (its entry register and the emitter's registered decisions, which see a token
#: two cycles after it is offered, then the three output stages from a step's issue: the read
#: addresses, the memory data, the window rows chosen by slot, ``hw/line_buffer.py``), the dense
#: one's two (the memory data, then that data registered straight from the memories,
#: ``hw/dense_line_buffer.py``).
WINDOW_STAGES = {False: 5, True: 2}


def line_buffer_ram(width: int, depth: int) -> str:
    """``"bram"`` (the memory carries ``ram_style = "block"``) or ``"auto"`` (synthesis chooses,
    as the resource model's family mapping prices it) for a ``width x depth`` line buffer
    memory: the line buffers build it so and the DSE prices it so."""
    return "bram" if width * depth >= LB_BRAM_BITS else "auto"


#: Cycles from the offer of the beat that completes a max-pool output row (a later row's token,
#: or ``eof``) to that row's first output beat: the flush's read register and the output register.
MAXPOOL_LATENCY = 2

#: Cycles from a beat's acceptance by a table activation (``hw/act.py``) to its output ``valid``:
#: the table ROM's read register.
ACT_LATENCY = 1


def window_max_latency(kernel: int) -> int:
    """Cycles from a window beat taken by a ``k x k`` window max pool (``hw/wmaxpool.py``) to its
    output ``valid``: the beat's register, the masked taps', one per compare level
    (``ceil(log2(k^2))``) and the output register."""
    return 3 + (kernel * kernel - 1).bit_length()


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
