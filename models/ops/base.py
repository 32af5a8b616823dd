"""What every op type provides, and the shared parts of the compute (conv-like) ops.

An op is a stateless object: every method is a pure function of its arguments. ``layer`` is
anything with a QNode's geometry (``op``, ``in_shape``, ``out_shape``, ``kernel``, ``stride``,
``groups``): a :class:`~models.qgraph.QNode` or a :class:`dse.workload.LayerWork`. ``stats`` is one
entry of :func:`models.stats.layer_stats` (``active_sites_mean`` the node's output sites per frame,
``active_in_mean`` its input sites, ``neighbour_hist`` the 3x3 active-neighbour histogram).
"""

from __future__ import annotations

import math

from contract.constants import ACT_BITS, act_width
from contract.point import LayerChoice
from models.reference import ACC_BITS

from . import _price
from ._price import mac_price

__all__ = ["Op", "ComputeOp", "StageOp", "sites", "kernel_hw", "largest_divisor", "divisors",
           "parallelism_options"]


def kernel_hw(layer) -> tuple[int, int]:
    """``(kh, kw)`` of a node or workload layer (``kernel_w`` 0 or absent: square)."""
    kh = int(layer.kernel)
    return kh, int(getattr(layer, "kernel_w", 0) or kh)


def sites(stats, key="active_sites_mean") -> float:
    """Sites per frame from a stats entry (``active_in_mean`` falls back to the output's)."""
    if key not in stats and key == "active_in_mean":
        key = "active_sites_mean"
    try:
        return float(stats[key])
    except (KeyError, TypeError):
        raise ValueError(f"layer stats need {key!r}, got {stats!r}") from None


def largest_divisor(n: int, limit: int) -> int:
    return max(d for d in range(1, min(n, limit) + 1) if n % d == 0)


def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def parallelism_options(n: int, *, max_par: int = 64, count: int = 6) -> list[int]:
    """Divisors of ``n`` up to ``max_par``: every power of two that divides, plus other divisors,
    thinned to at most ``count`` values spread geometrically (always keeping 1 and the largest)."""
    opts = [d for d in divisors(n) if d <= max_par]
    if len(opts) <= count:
        return opts
    pow2 = [d for d in opts if d & (d - 1) == 0]
    if len(pow2) >= count:
        idx = sorted({round(i * (len(pow2) - 1) / (count - 1)) for i in range(count)})
        return [pow2[i] for i in idx]
    rest = [d for d in opts if d not in pow2]
    keep = set(pow2) | {opts[-1]}
    for d in sorted(rest, key=lambda d: -d):
        if len(keep) >= count:
            break
        keep.add(d)
    return sorted(keep)


class Op:
    """One layer type. Subclasses set the class attributes and override what applies.

    Attributes
    ----------
    name : str
        Registry key and hardware block kind (``"conv3x3"``).
    node_op : str
        The QNode ``op`` string it handles (several kinds may share one, told apart by
        :meth:`matches`).
    compute : bool
        Has weights: a design point configures it with a :class:`~contract.point.LayerChoice`.
    stage : bool
        A pass-through stage (no choice of its own) that runs at its producer's output lanes;
        the DSE prices it with that producer.
    block : str or None
        ``"module:Class"`` of its Amaranth component in ``hw/`` (the composer imports it).
    resource_key : str or None
        Its entry in the resource model's fitted coefficients (``dse/resource_model.json``).
    in_ports : tuple of str
        The block's input stream ports, one per graph input.
    single_site : bool
        Sees one site per frame whatever the map (the classifier after the global pool).
    keeps_range : bool
        Its output values lie in its input's range (pooling): no bounds of its own.
    """

    name = ""
    node_op = ""
    compute = False
    stage = False
    block: str | None = None
    resource_key: str | None = None
    in_ports = ("i",)
    single_site = False
    keeps_range = False

    def matches(self, node) -> bool:
        return True

    #: Whether the DSE measures the active-neighbour histogram of its output (3x3 windows).
    neighbour_stats = False

    # -- models: graph and golden model -----------------------------------------------------
    def check_geometry(self, layer) -> None:
        """Raise ``ValueError`` (message without the node name) unless the shapes, kernel, stride
        and groups are ones this op takes (a QNode or a ``dse.workload.LayerWork``)."""

    def check_node(self, node) -> None:
        """Raise ``ValueError`` (message without the node name) unless ``node`` is well formed."""
        self.check_geometry(node)

    def golden(self, node, inputs):
        """The integer reference: ``inputs`` is one ``(coords [N, 2], feats [N, C])`` per graph
        input, the result the node's output in the same form. Defined for empty frames."""
        raise NotImplementedError(f"{self.name} has no golden model")

    def out_bits(self, node, in_bits: list) -> int | None:
        """Bits of the signed lanes of the node's output stream, given its inputs'
        (docs/CONTRACT.md, "Stream widths"): a stage passes its input's values on (a join: its
        widest input's, the narrower one sign-extended on its edge); None: an accumulator as wide
        as the block makes it (a classifier's raw logits)."""
        return max(in_bits)

    def stage_in_bits(self, node, out_bits: int) -> int:
        """Bits of the signed lanes a pass-through stage takes its input stream at, given its
        output's: the same (a join takes every input at its output's width; a table activation
        at its table's, :mod:`models.ops.act`). The composer sign-extends a narrower producer's
        stream on its edge."""
        return out_bits

    def stage_fields(self, node) -> dict:
        """What the DSE's stage entry of a pass-through node carries for its price beyond its
        shapes and widths (:func:`dse.workload.workload`; none here)."""
        return {}

    # -- contract: cycles, latency, sites in flight ------------------------------------------
    def cycles(self, layer, choice, stats, *, lanes=None) -> float:
        """The block's cycles per frame (a formula of :mod:`contract.cycles`)."""
        return 0.0

    def stage_cycles(self, layer, choice, stats, *, lanes=None) -> float:
        """Cycles per frame of the node's pipeline stage when frames follow each other."""
        return self.cycles(layer, choice, stats, lanes=lanes)

    def producer_stall(self, producer_cycles, out_beats, stage, *, lanes, fifo_depth) -> float:
        """Cycles per frame this stage costs the compute layer that feeds it."""
        return 0.0

    def tail(self, layer, choice, stats, *, lanes=None) -> float:
        """Cycles from the node's last input beat to its last output beat in a lone frame."""
        return 0.0

    def hold(self, layer, *, beats: int = 1, slots: int | None = None) -> int:
        """Most sites the stage holds between taking a site's first beat and emitting its last
        (what a residual skip FIFO must match, ``hw/compose.py``)."""
        return 1

    def input_fifo_sites(self, layer) -> int:
        """Sites the FIFO in front of the block must hold (0: the default depth). A block whose
        input demand is bursty (fast for a while, then slow) needs one deep enough to smooth it,
        or, behind a fork, it stalls the other branch with its slow phase."""
        return 0

    def stage_lanes(self, node, lanes: int) -> int:
        """The lanes a pass-through stage runs at, given its first producer's (the same, but a
        join may need fewer so that every input's channels divide)."""
        return lanes

    def output_fifo_sites(self, layer) -> int:
        """Sites the FIFO after the block must hold (0: the default depth). A block that sends in
        bursts and takes no input meanwhile (the max pool flushing a row) needs room for a whole
        burst, or a slower consumer (a narrower next layer) stretches the burst and stalls the
        layers before it."""
        return 0

    # -- hw -----------------------------------------------------------------------------------
    def block_args(self, node, choice, shape, *, abits: int, dense: bool = False) -> dict:
        """Constructor arguments of :attr:`block` for ``node``; ``shape`` is the
        ``hw.stream.TokenShape`` of its input stream (at ``choice.lanes`` for compute ops);
        ``dense``: every frame holds every site (:attr:`models.qgraph.QGraph.dense`), so a window
        op can take the dense line buffer."""
        return {"shape": shape}


class StageOp(Op):
    """A pass-through stage: no weights, runs at its producer's lanes.

    A stage op whose price has fitted terms lists its Yosys calibration configurations in
    :attr:`calibration` (``{"c", "h", "w", "lanes"}``: its block on a ``c x h x w`` stream of
    ``lanes`` lanes) and the terms in :meth:`price_features`; ``benchmarks/fit_resources.py
    --stage-ops`` synthesises the configurations and fits the terms' coefficients into the
    resource model's ``stage`` section under the op's name.
    """

    stage = True
    calibration: tuple = ()
    #: The resource model's ``stage`` entry of the fitted terms (None: the op's own name).
    fit_key: str | None = None

    def _lanes(self, choice, lanes) -> int:
        """The lanes the stage runs at: the choice's, else the producer's ``lanes`` (1 if
        unknown)."""
        ln = lanes if choice is None else choice.lanes
        return 1 if ln is None else ln

    def input_fifo_price(self, stage, *, lanes: int, model) -> dict:
        """``{"lut", "ff", "dsp", "bram18"}`` of the stage's input FIFO alone (a stage whose block
        is a few comparators and a multiplexer)."""
        f = _price.fifo(model, _price.stream_bits(lanes, _price.coord_bits(stage["in_shape"]),
                                                  stage.get("bits", ACT_BITS)))
        return {"lut": f["lut"], "ff": f["ff"], "dsp": 0.0, "bram18": 0}

    def stage_price(self, stage, *, lanes: int, coord_bits: int, model) -> dict:
        """``{"lut", "ff", "dsp", "bram18"}`` of the stage (and its input FIFO) at ``lanes``."""
        return {"lut": 0.0, "ff": 0.0, "dsp": 0.0, "bram18": 0}

    def block_structural(self, stage, *, lanes: int, model) -> dict:
        """``{"lut", "ff"}`` of what :meth:`stage_price` prices structurally that the stage's
        block alone holds (its own memories; not the FIFOs around it): the calibration fit
        (``benchmarks/fit_resources.py --stage-ops``) synthesises the block alone and fits its
        terms to the rest."""
        return {"lut": 0.0, "ff": 0.0}

    def price_features(self, stage, *, lanes: int, model=None) -> dict:
        """The fitted terms of the price: ``{term: value}`` (coefficients per resource)."""
        return {}

    def fitted(self, stage, *, lanes: int, model) -> dict:
        """``{"lut", "ff"}`` of the fitted terms (0 where the model has no coefficients)."""
        coef = (model.stage or {}).get(self.fit_key or self.name) or {}
        feats = self.price_features(stage, lanes=lanes, model=model)
        return {r: sum(coef.get(r, {}).get(k, 0.0) * v for k, v in feats.items())
                for r in ("lut", "ff")}


class ComputeOp(Op):
    """A layer with weights (conv k x k, grouped or not, linear): MACs, then a requantizer."""

    compute = True

    # -- models -----------------------------------------------------------------------------
    def check_node(self, node) -> None:
        if node.weight is None or node.bias is None or node.M is None:
            raise ValueError(f"{node.op} needs weight, bias and M")
        self.check_geometry(node)

    def golden(self, node, inputs):
        """A conv's golden model: :func:`models.reference.sparse_conv` (zero-filled dense conv
        sampled at the output sites), then the requantizer if the node has one."""
        import torch

        from models import reference as ref

        (xc, xf), = inputs
        _, h, w = node.in_shape
        oc, of = ref.sparse_conv(xc, xf, weight=node.weight, bias=node.bias, height=h, width=w,
                                 stride=node.stride, groups=node.groups)
        if node.requant:
            of = ref.requant(of, torch.from_numpy(node.M), node.S, node.lo, node.hi,
                             R=None if node.R is None else torch.from_numpy(node.R))
        return oc, of

    def out_bits(self, node, in_bits: list) -> int | None:
        # the requantizer clamps to [lo, hi]: the stream carries that range's bits
        return act_width(node.lo, node.hi) if node.requant else None

    # -- choices ----------------------------------------------------------------------------
    def default_choice(self, layer, *, lanes: int, pe: int) -> LayerChoice:
        ln = largest_divisor(layer.in_shape[0], lanes)
        p = largest_divisor(layer.out_shape[0], pe)
        return LayerChoice(layer.wformat, ln, p)

    def check_choice(self, layer, choice) -> None:
        if choice.kfold != 1 and not hasattr(self, "kfolds"):
            raise ValueError("only a window conv folds its kernel rows (kfold)")
        c_in, c_out = layer.in_shape[0], layer.out_shape[0]
        if c_in % choice.lanes:
            raise ValueError(f"lanes {choice.lanes} does not divide its {c_in} input channels")
        if c_out % choice.pe:
            raise ValueError(f"pe {choice.pe} does not divide its {c_out} output channels")

    def parallel_pairs(self, layer, *, max_lanes, max_pe, count) -> list[tuple[int, int]]:
        lanes_opts = parallelism_options(layer.in_shape[0], max_par=max_lanes, count=count)
        pe_opts = parallelism_options(layer.out_shape[0], max_par=max_pe, count=count)
        return [(ln, p) for ln in lanes_opts for p in pe_opts]

    def candidates(self, layer, formats, *, max_lanes=64, max_pe=64, count=6, datapaths=None):
        """Every (format, lanes, pe, datapath) the explorer considers for ``layer``;
        ``datapaths(fmt)`` lists a format's datapaths on the target (default: the format's own,
        :func:`contract.constants.default_datapath`)."""
        from contract.constants import default_datapath

        pairs = self.parallel_pairs(layer, max_lanes=max_lanes, max_pe=max_pe, count=count)
        out = []
        for f in formats:
            for dp in (datapaths(f) if datapaths else (default_datapath(f),)):
                for ln, p in pairs:
                    ch = LayerChoice(f, ln, p, dp) if dp != "dsp2" or p % 2 == 0 else None
                    if ch is not None and self._takes(layer, ch):
                        out.append(ch)
        return out

    def _takes(self, layer, choice) -> bool:
        try:
            self.check_choice(layer, choice)
        except ValueError:
            return False
        return True

    # -- cycles -----------------------------------------------------------------------------
    def beats(self, layer, choice) -> int:
        return layer.in_shape[0] // choice.lanes

    #: Whether a layer of this op has a requantizer when its workload does not say
    #: (:attr:`dse.workload.LayerWork.requant` None).
    default_requant = True

    def requantized(self, layer) -> bool:
        """Whether a requantizer follows the layer's accumulator (the graph node's ``requant``,
        carried by the workload); the op's :attr:`default_requant` where the layer does not say."""
        r = getattr(layer, "requant", None)
        return self.default_requant if r is None else bool(r)

    def pipeline(self, layer, choice) -> int:
        """Cycles a beat spends in the stage's pipeline beyond its share of the work (from its
        line buffer or input bank to the requantizer's output): part of :meth:`tail`, and what
        the row-level latency model (:mod:`dse.latency`) adds per row."""
        raise NotImplementedError

    # -- resources --------------------------------------------------------------------------
    def mac_count(self, layer, choice) -> int:
        kh, kw = kernel_hw(layer)
        return kh * kw // choice.kfold * choice.lanes * choice.pe

    def constant_weights(self, layer, choice) -> bool:
        """Whether the weight ROM is one word: every weight is used every cycle, so each product
        is by a constant that synthesis folds into the multiplier (a stem with one input channel
        and every output a beat, as LeNet-5's first conv at 1 lane x 6)."""
        return self.weight_count(layer) <= self.mac_count(layer, choice)

    def weight_count(self, layer) -> int:
        kh, kw = kernel_hw(layer)
        return layer.out_shape[0] * (layer.in_shape[0] // layer.groups) * kh * kw

    def resource_block(self, layer) -> str:
        """The resource model's ``block`` entry that prices ``layer``."""
        return self.resource_key

    def weight_memory(self, layer, choice, model) -> tuple[int, int]:
        """(LUTs, BRAM18) of the weight ROM: one word per cycle holds every weight the MACs use
        in that cycle (:func:`_price.memory`)."""
        from models.quant.formats import weight_format

        if self.constant_weights(layer, choice):
            return 0, 0  # one word: constants, folded into the multipliers
        width = self.mac_count(layer, choice) * weight_format(choice.format).bits
        return _price.memory(model, width, self.weight_depth(layer, choice), rom=True)

    def weight_depth(self, layer, choice) -> int:
        """Words of the weight ROM as the block declares it: one per cycle's weights. A block
        whose address is a concatenation of counters (:class:`~models.ops.conv3x3.Conv3x3`)
        pads it to their powers of two."""
        return math.ceil(self.weight_count(layer) / self.mac_count(layer, choice))

    def block_memories(self, layer, choice) -> list[tuple[int, int, bool]]:
        """``(width, depth, rom)`` of the block's memories its resource fit prices as logic:
        the bias ROM, one word of ``pe`` accumulators per output group (``hw.conv1x1``,
        ``hw.conv3x3``)."""
        return [(choice.pe * ACC_BITS, math.ceil(layer.out_shape[0] / choice.pe), True)]

    def line_buffer_memory(self, layer, choice, model=None) -> tuple[int, int]:
        return 0, 0

    def line_buffer_luts(self, layer, choice, model=None) -> int:
        return 0

    def bitmap_columns(self, layer) -> int:
        """Columns of the occupancy bitmaps a sparse line buffer keeps per row slot (the map's
        width; 0 for a block without one)."""
        return 0

    def line_buffer_registers(self, layer, choice) -> int:
        """Flip-flops of the line buffer beyond the block's fitted terms."""
        return 0

    def requant_skid_bits(self, layer, choice) -> list[int]:
        """Payload bits of the skid buffer (``hw/skid.py``) the composer puts between the MAC
        unit and its requantizer, outside the block: ``pe`` accumulators of the requantizer's
        width (Yosys drops the bits above it) and the output coordinates (none without a
        requantizer)."""
        if not self.requantized(layer):
            return []
        from models.quant.formats import weight_format

        acc = self.acc_bits(layer, weight_format(choice.format).name)
        return [choice.pe * acc + _price.coord_bits(layer.out_shape) + 1]

    def block_skid_bits(self, layer, choice) -> list[int]:
        """Payload bits of the skid buffers inside the compute block itself (none here)."""
        return []

    def block_structural(self, layer, choice) -> dict:
        """``{"lut", "ff"}`` that the price adds structurally for what is inside the compute
        block (its skid buffers, its line buffer's registers): a block synthesised alone holds
        them, so the resource fit takes them out of its targets before fitting the block's
        terms (``benchmarks/fit_resources.py``), and the price adds them back once."""
        sk = [_price.skid(b) for b in self.block_skid_bits(layer, choice)]
        return {"lut": sum(x["lut"] for x in sk),
                "ff": sum(x["ff"] for x in sk) + self.line_buffer_registers(layer, choice)}

    def window_bits(self, layer, choice) -> int:
        """Bits of one window beat, ``kh x kw x lanes`` activations: the taps a window block
        registers and steers to its MACs every beat (a 5x5 window holds 25 / 9 of a 3x3's)."""
        kh, kw = kernel_hw(layer)
        return kh * kw * choice.lanes * getattr(layer, "in_bits", ACT_BITS)

    def steered_bits(self, layer, choice) -> int:
        """Bits of the window a block registers and steers to its MACs each cycle: the window
        beat's, a ``kfold``-th of it when the kernel rows are folded (the fitted
        ``per_window_bit`` term; the whole beat's registers are :meth:`fold_bits`)."""
        return self.window_bits(layer, choice) // choice.kfold

    def held_beats(self, layer, choice) -> int:
        """Window beats of a site the block holds in registers and multiplexes by beat: all
        ``B = ceil(C_in / lanes)`` (a block that keeps them in LUT RAM, priced by
        :meth:`beat_buffer_luts`, reads one)."""
        return math.ceil(layer.in_shape[0] / choice.lanes)

    def beat_buffer_luts(self, layer, choice, model) -> int:
        """LUT sites of the LUT RAM that holds a site's window beats (none here)."""
        return 0

    def ram_beat_bits(self, layer, choice) -> int:
        """The window beats of a site the block keeps in LUT RAM, in bits of the window
        times address bits (none here): the fitted ``per_ram_beat_bit`` term."""
        return 0

    def fold_bits(self, layer, choice) -> int:
        """Bits of a window beat over every held input beat of a site: what a folded block
        buffers per input beat and multiplexes by kernel row (:meth:`held_beats`)."""
        return self.window_bits(layer, choice) * self.held_beats(layer, choice)

    def fold_term(self, choice) -> str:
        """The resource model's coefficient that prices :meth:`fold_bits` at this fold."""
        return "per_fold_bit"

    def beat_bits(self, layer, choice) -> int:
        """Bits of the held window beats past the first of a site (``window_bits x (B - 1)``,
        ``B`` the :meth:`held_beats`): what an unfolded full conv steers by beat."""
        return self.window_bits(layer, choice) * (self.held_beats(layer, choice) - 1)

    def acc_bits(self, layer, fmt) -> int:
        """The accumulator's width under ``fmt``: measured from the quantized weights where the
        workload holds it (``layer.acc_bits``), else the bound from the fan-in."""
        known = dict(getattr(layer, "acc_bits", ()) or ())
        if fmt in known:
            return known[fmt]
        kh, kw = kernel_hw(layer)
        return _price.acc_bits(fan_in=(layer.in_shape[0] // layer.groups) * kh * kw,
                               fmt=fmt)

    def price(self, layer, choice, model) -> dict:
        """``{"dsp", "lut", "ff"}`` (floats) and ``bram18`` of the compute block, its weight
        memory, line buffer and requantizer, from the coefficients under :attr:`resource_key`."""
        from models.quant.formats import weight_format

        fmt = weight_format(choice.format)
        macs = self.mac_count(layer, choice)
        mac = mac_price(model, fmt.name, choice.datapath,
                        constant=self.constant_weights(layer, choice))
        # the MAC coefficients are fitted at 8-bit activations; a product's LUTs and registers
        # (LUT or shift-add partial products, the adder tree after a DSP) scale with its width,
        # wbits + abits (docs/CONTRACT.md, "Stream widths")
        in_bits = getattr(layer, "in_bits", ACT_BITS)
        narrow = (fmt.bits + in_bits) / (fmt.bits + ACT_BITS)
        blk = model.block.get(self.resource_block(layer)) or model.block[self.resource_key]
        rq = model.requant
        rq_dsp = rq.get("dsp", 0)
        if "dsp_acc_bits" in rq and self.acc_bits(layer, fmt.name) > rq["dsp_acc_bits"]:
            rq_dsp *= 2  # the accumulator x M product no longer fits one DSP slice
        lb, lb_bram = self.line_buffer_memory(layer, choice, model)
        lut_w, bram_w = self.weight_memory(layer, choice, model)
        res = {}
        for r in ("lut", "ff", "dsp"):
            v = (blk["base"].get(r, 0) + blk["per_lane"].get(r, 0) * choice.lanes
                 + blk["per_pe"].get(r, 0) * choice.pe
                 + mac.get(r, 0) * macs * (1.0 if r == "dsp" else narrow))
            if lb:  # line-buffer addressing and read muxes grow with its depth
                v += blk.get("per_lb_lut", {}).get(r, 0) * lb
            if "per_map_col" in blk:  # a sparse line buffer's row bitmaps
                v += blk["per_map_col"].get(r, 0) * self.bitmap_columns(layer)
            if choice.kfold > 1:  # the kernel-row mux and the window-beat buffer
                # (the op's own term for this fold where the model has one)
                term = self.fold_term(choice)
                term = term if term in blk else "per_fold_bit"
                v += blk.get(term, {}).get(r, 0) * self.fold_bits(layer, choice)
            elif "per_beat_bit" in blk:  # the beats of a site a full conv steers
                v += blk["per_beat_bit"].get(r, 0) * self.beat_bits(layer, choice)
            if "per_ram_beat_bit" in blk:  # ... when it keeps them in LUT RAM
                v += blk["per_ram_beat_bit"].get(r, 0) * self.ram_beat_bits(layer, choice)
            if "per_rom_lut" in blk:  # a weight ROM in LUTs: its decode and read mux
                v += blk["per_rom_lut"].get(r, 0) * lut_w
            if "per_window_bit" in blk:  # the window's registers and tap muxes (k x k)
                v += blk["per_window_bit"].get(r, 0) * self.steered_bits(layer, choice)
            if self.requantized(layer):
                per_lane = rq_dsp if r == "dsp" else rq.get(r, 0)
                v += rq.get("base", {}).get(r, 0) + per_lane * choice.pe
            res[r] = v
        # priced structurally: the skid buffer before the requantizer, and what the block holds
        # that its fitted terms leave out (its own skid buffers and line-buffer registers)
        inner = self.block_structural(layer, choice)
        res["lut"] += inner["lut"]
        res["ff"] += inner["ff"]
        for bits in self.requant_skid_bits(layer, choice):
            sk = _price.skid(bits)
            res["lut"] += sk["lut"]
            res["ff"] += sk["ff"]
        res["lut"] += lut_w + self.beat_buffer_luts(layer, choice, model)
        # memories the block's fit holds as its own LUTs (its bias ROM; a 1x1 block's input
        # buffer): where the family's mapping rule puts one in block RAM (ECP5's for both; the
        # UltraScale+ RAM rule for the input buffer) its blocks are priced
        for width, depth, rom in self.block_memories(layer, choice):
            if _price.rule_choice(model, width, depth, rom=rom) == "bram":
                bram_w += _price.memory_bram18(width, depth)
        res["lut"] += lb
        res["bram18"] = bram_w + lb_bram
        return res

    # -- hw -----------------------------------------------------------------------------------
    def block_args(self, node, choice, shape, *, abits: int, dense: bool = False) -> dict:
        return dict(shape=shape, c_out=node.out_shape[0], pe=choice.pe, fmt=choice.format,
                    weight=node.weight, bias=node.bias, datapath=choice.datapath)

