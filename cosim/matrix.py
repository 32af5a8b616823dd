"""The co-simulation acceptance matrix: zoo models x design points x stalls x simulators.

Each cell builds (or reuses) a model's design for a point, simulates data-set frames plus the
special frames (:func:`special_frames`) through :func:`cosim.session.simulate` (what
``codesign sim`` runs) and checks them against ``QGraph.run_frame``. :func:`compare_simulators`
runs the same frames and stall pattern on Verilator and Icarus and compares the output traces
(every output word and the cycle it left the design) and the cycle counts.
``benchmarks/cosim_matrix.py`` is the command line around it.
"""

from __future__ import annotations

import csv
import io
import random
from pathlib import Path

from common.errors import CodesignError

__all__ = ["POINTS", "MIXED_FORMATS", "STALLS", "CSV_COLUMNS", "point_formats",
           "special_frames", "Design", "load_design", "formula_columns", "run_cell",
           "compare_simulators", "merge_rows", "read_csv", "write_csv"]

POINTS = ("int8", "mixed")
# The mixed point cycles these formats over the layers in network order, so every block kind
# (3x3 stem, depthwise, 1x1, head) meets more than one format across the zoo.
MIXED_FORMATS = ("int8", "dybit4", "int4")
STALLS = (0.0, 0.3, 0.7)
CSV_COLUMNS = ("check", "model", "point", "stall", "sim", "path", "frames", "data_frames",
               "special_frames", "mismatches", "deadlock", "cycles_per_frame_mean",
               "cycles_per_frame_max", "total_cycles", "sim_cycles_per_s", "wall_s",
               "agrees_with", "outputs_identical", "cycles_identical", "formula_frames",
               "formula_ratio_mean", "formula_ratio_min", "formula_ratio_max", "first_mismatch")


def point_formats(layer_names, point: str):
    """Weight formats of a named point: ``"int8"`` everywhere, or ``"mixed"``
    (:data:`MIXED_FORMATS` cycled over ``layer_names``) as ``{layer: format}``."""
    if point == "int8":
        return "int8"
    if point == "mixed":
        return {name: MIXED_FORMATS[i % len(MIXED_FORMATS)] for i, name in enumerate(layer_names)}
    raise CodesignError(f"point must be one of {', '.join(POINTS)}, not {point!r}")


def special_frames(rng: random.Random, *, height: int, width: int, channels: int,
                   dense: bool = False) -> list:
    """Empty, full, single-site (first, last and an inner site), border-only, empty again.

    Feature values favour the extremes (-127, 127) and 0, so saturation and zero paths are hit.
    ``dense`` (a network whose frames hold every site, ``QGraph.dense``): every frame full, the
    specials in the values instead: all 127, all -127, all 0, mixed extremes, and a
    checkerboard of 127 and -127.
    """
    def feats(n):
        return [[rng.choice([-127, 127, 0, rng.randint(-127, 127)]) for _ in range(channels)]
                for _ in range(n)]
    full = [(y, x) for y in range(height) for x in range(width)]
    if dense:
        def const(v):
            return [[v] * channels for _ in full]
        checker = [[127 if (y + x + ch) % 2 else -127 for ch in range(channels)]
                   for y, x in full]
        return [(full, const(127)), (full, const(-127)), (full, const(0)),
                (full, feats(len(full))), (full, checker)]
    border = [(y, x) for y, x in full if y in (0, height - 1) or x in (0, width - 1)]
    return [([], []), (full, feats(len(full))), ([(0, 0)], feats(1)),
            ([(height - 1, width - 1)], feats(1)), ([(height // 2, width // 3)], feats(1)),
            (border, feats(len(border))), ([], [])]


class Design:
    """A built design of a zoo model at a named point: ``manifest``, ``qgraph``, ``bundle``,
    ``golden`` (``QGraph.run_frame`` extended to empty frames) and ``rebuilt``."""

    def __init__(self, *, model, point, manifest, qgraph, bundle, golden, rebuilt):
        self.model, self.point, self.manifest = model, point, manifest
        self.qgraph, self.bundle, self.golden, self.rebuilt = qgraph, bundle, golden, rebuilt

    def frames(self, n: int, *, seed: int = 1) -> tuple[list, int]:
        """``(frames, n_special)``: ``n`` data-set frames then the special frames."""
        c, h, w = self.qgraph.input.in_shape
        data = list(self.bundle.frames(n, seed=seed)) if n else []
        if len(data) < n:
            raise CodesignError(f"{self.model} has only {len(data)} test frames, {n} requested")
        special = special_frames(random.Random(seed + 1), height=h, width=w, channels=c,
                                 dense=self.qgraph.dense)
        return data + special, len(special)


def load_design(model: str, point: str, build_root) -> Design:
    """Build ``model`` at ``point`` into ``build_root/<model>-<point>`` (no synthesis), reusing
    the directory when its manifest was built from the same QGraph (same ``qgraph_sha256``)."""
    import json

    from contract.point import DesignPoint
    from hw.build import build, qgraph_fingerprint
    from models import zoo

    from .golden import qgraph_golden
    from .manifest import load_manifest

    try:
        bundle = zoo.load(model, train_if_missing=False, progress=False)
    except zoo.ModelError as exc:
        raise CodesignError(f"model {model!r} is not trained here ({exc}); run `codesign train "
                            f"--model {model}` first") from None
    qgraph = bundle.qgraph(point_formats(bundle.layer_names(), point))
    out = Path(build_root) / f"{model}-{point}"
    mfile = out / "manifest.json"
    rebuilt = True
    if mfile.is_file():
        try:
            rebuilt = json.loads(mfile.read_text()).get("qgraph_sha256") != \
                qgraph_fingerprint(qgraph)
        except (OSError, ValueError):
            rebuilt = True
    if rebuilt:
        build(qgraph, DesignPoint.default(qgraph, model=bundle.name), out, model=bundle.name)
    return Design(model=model, point=point, manifest=load_manifest(out), qgraph=qgraph,
                  bundle=bundle, golden=qgraph_golden(qgraph), rebuilt=rebuilt)


def _row(design, result, *, n_special, stall, check="matrix") -> dict:
    s = result.summary()
    cpf = s["cycles_per_frame"]
    return {"check": check, "model": design.model, "point": design.point, "stall": stall,
            "sim": result.sim, "path": result.path, "frames": result.frames,
            "data_frames": result.frames - n_special, "special_frames": n_special,
            "mismatches": len(result.mismatches), "deadlock": result.stopped or "",
            "cycles_per_frame_mean": cpf["mean"], "cycles_per_frame_max": cpf["max"],
            "total_cycles": result.total_cycles,
            "sim_cycles_per_s": round(result.sim_cycles_per_s),
            "wall_s": round(result.wall_s, 1), "agrees_with": "", "outputs_identical": "",
            "cycles_identical": "", "first_mismatch": s.get("first_mismatch", "")}


def formula_columns(design: Design, frames, measured) -> dict:
    """Measured cycles per frame over the cycle model's prediction (:mod:`cosim.cycles`), for
    ``frames`` (data frames, back to back, unstalled) and their ``measured`` periods."""
    from .cycles import compare_cycles, predicted_frame_cycles

    cmp = compare_cycles(measured, predicted_frame_cycles(design.qgraph, design.manifest.point,
                                                          frames))
    if not cmp.get("frames"):
        return {}
    return {"formula_frames": cmp["frames"], "formula_ratio_mean": cmp["ratio_mean"],
            "formula_ratio_min": cmp["ratio_min"], "formula_ratio_max": cmp["ratio_max"]}


def run_cell(design: Design, *, frames, expected, n_special: int, stall: float,
             sim: str = "verilator", seed: int = 3, cache_dir=None, work_dir=None,
             timeout: int = 1_000_000, check: str = "matrix"):
    """Simulate ``frames`` at stall ``stall`` (input idle and output backpressure); return
    ``(row, result)``. Unstalled, the row also holds measured / predicted cycles per frame over
    the data frames (the frames before the ``n_special`` special ones)."""
    from .session import simulate

    r = simulate(design.manifest, frames, expected=expected, sim=sim, stall_in=stall,
                 stall_out=stall, seed=seed, timeout=timeout, cache_dir=cache_dir,
                 work_dir=work_dir)
    row = _row(design, r, n_special=n_special, stall=stall, check=check)
    n_data = len(frames) - n_special
    if stall == 0 and r.ok and n_data > 1:
        row.update(formula_columns(design, frames[:n_data], r.cycles_per_frame[:n_data]))
    return row, r


def compare_simulators(design: Design, *, frames, expected, n_special: int, stall: float = 0.3,
                       seed: int = 5, cache_dir=None, work_root=None,
                       timeout: int = 1_000_000) -> list[dict]:
    """Run the same frames and stall pattern on Verilator and Icarus; one row per simulator.

    The Icarus row records whether its output trace (each output word with the cycle it was
    accepted) and its cycles per frame and total cycles equal Verilator's.
    """
    work_root = Path(work_root or design.manifest.root / "sim")
    rows, results = [], {}
    for sim in ("verilator", "icarus"):
        row, r = run_cell(design, frames=frames, expected=expected, n_special=n_special,
                          stall=stall, sim=sim, seed=seed, cache_dir=cache_dir,
                          work_dir=work_root / f"agree-{sim}", timeout=timeout,
                          check="sim-agreement")
        rows.append(row)
        results[sim] = r
    v, i = results["verilator"], results["icarus"]
    traces = [Path(r.extra["work_dir"]) / "trace.txt" for r in (v, i)]
    same_out = traces[0].read_text() == traces[1].read_text()
    same_cycles = (v.cycles_per_frame == i.cycles_per_frame and v.latency == i.latency
                   and v.total_cycles == i.total_cycles)
    rows[1].update(agrees_with="verilator", outputs_identical=same_out,
                   cycles_identical=same_cycles)
    return rows


def merge_rows(old: list[dict], new: list[dict]) -> list[dict]:
    """``old`` rows minus those the ``new`` rows replace (same check, model, point, stall, sim
    and path), then ``new``."""
    def key(r):
        return (str(r["check"]), str(r["model"]), str(r["point"]), float(r["stall"]),
                str(r["sim"]), str(r["path"]))
    replaced = {key(r) for r in new}
    return [r for r in old if key(r) not in replaced] + list(new)


def read_csv(path) -> list[dict]:
    path = Path(path)
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def write_csv(path, rows) -> None:
    """Write ``rows`` (dicts with :data:`CSV_COLUMNS`) atomically."""
    from common.fsutil import write_text

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: r.get(k, "") for k in CSV_COLUMNS})
    write_text(path, buf.getvalue())
