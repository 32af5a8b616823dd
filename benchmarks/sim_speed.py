"""Simulation speed: fast path (HDL wrapper) vs Python-driven cocotb path, Verilator vs Icarus.

Builds (or reuses) a network design, simulates frames of its data set on each path and simulator,
checks every output bit against the golden model, and prints one JSON line per run plus a table:

    .venv/bin/python benchmarks/sim_speed.py --model eye --frames 20 --python-frames 2
    .venv/bin/python benchmarks/sim_speed.py --toy          # no model needed: the cosim toy DUT

``sim_cycles_per_s`` is simulated clock cycles over the wall time between reset release and the
last frame (simulator start-up and builds excluded; builds are cached).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from common.errors import CodesignError  # noqa: E402
from cosim.runner import simulator_missing  # noqa: E402
from cosim.session import expected_frames, simulate  # noqa: E402


def _network(model: str, fmt: str, build_dir: Path):
    """Model by zoo name or checkpoint path (hardware speed does not need a well-trained one)."""
    from contract.point import DesignPoint
    from cosim.golden import qgraph_golden
    from cosim.manifest import load_manifest
    from hw.build import build, qgraph_fingerprint
    from models import zoo
    bundle = zoo.load(model)
    qgraph = bundle.qgraph(fmt)
    point = DesignPoint.default(qgraph, model=bundle.name)
    mfile = build_dir / "manifest.json"
    # rebuild when the model was retrained since (the Verilog would not match the golden model)
    if not mfile.exists() or \
            json.loads(mfile.read_text()).get("qgraph_sha256") != qgraph_fingerprint(qgraph):
        build(qgraph, point, build_dir, model=bundle.name)
    m = load_manifest(build_dir)
    return m, (lambda n, seed: bundle.frames(n, seed=seed)), qgraph_golden(qgraph), qgraph


def _toy(build_dir: Path):
    from cosim.manifest import load_manifest
    from cosim.toy import write_toy_build
    golden = write_toy_build(build_dir, height=16, width=16, channels=8, lanes=4, ii=1)
    m = load_manifest(build_dir)

    def frames(n, seed):
        rng = random.Random(seed)
        out = []
        for _ in range(n):
            coords = [(y, x) for y in range(16) for x in range(16) if rng.random() < 0.5]
            out.append((coords, [[rng.randint(-127, 127) for _ in range(8)] for _ in coords]))
        return out
    return m, frames, golden, None


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="eye", help="zoo model (default eye)")
    p.add_argument("--format", default="int8", help="weight format of every layer")
    p.add_argument("--toy", action="store_true", help="benchmark the cosim toy DUT instead")
    p.add_argument("--build", type=Path, default=None, help="build directory (reused)")
    p.add_argument("--frames", type=int, default=20, help="frames on the fast path")
    p.add_argument("--python-frames", type=int, default=2, help="frames on the Python path")
    p.add_argument("--sims", default="verilator,icarus", help="simulators to compare")
    p.add_argument("--stall", type=float, default=0.0, help="stall probability (both streams)")
    p.add_argument("--out", type=Path, default=None, help="also write the rows as JSON here")
    args = p.parse_args(argv)
    name = "toy" if args.toy else f"{Path(args.model).parent.name or args.model}-{args.format}"
    build_dir = args.build or ROOT / "build" / "bench" / name
    try:
        m, frames_of, golden, qgraph = (_toy(build_dir) if args.toy
                                        else _network(args.model, args.format, build_dir))
    except CodesignError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    n = max(args.frames, args.python_frames)
    frames = frames_of(n, 0)
    expected = expected_frames(frames, golden)
    rows = []
    failed = False
    for sim in args.sims.split(","):
        reason = simulator_missing(sim)
        if reason:
            print(f"skip {sim}: {reason}", file=sys.stderr)
            continue
        for path, k in (("fast", args.frames), ("python", args.python_frames)):
            if k < 1:
                continue
            r = simulate(m, frames[:k], expected=expected[:k], sim=sim, path=path,
                         stall_in=args.stall, stall_out=args.stall, timeout=1_000_000)
            row = {"design": name, **r.summary(), "sim_wall_s": round(r.sim_wall_s, 3),
                   "wall_s": round(r.wall_s, 2), "build_reused": r.build_reused}
            if qgraph is not None and path == "fast" and args.stall == 0:
                from cosim.cycles import compare_cycles, predicted_frame_cycles
                pred = predicted_frame_cycles(qgraph, m.point, frames[:k])
                row["cycles_vs_formula"] = compare_cycles(r.cycles_per_frame, pred)
            rows.append(row)
            print(json.dumps(row), flush=True)
            if not r.ok:
                failed = True
                print(f"error: {sim} {path}: {r.stopped or r.mismatches[0]}", file=sys.stderr)
    print(f"\n{'design':<14}{'sim':<11}{'path':<8}{'frames':>7}{'cycles':>11}"
          f"{'cycles/frame':>14}{'cycles/s':>12}{'cycles/cpu-s':>14}")
    for r in rows:
        print(f"{r['design']:<14}{r['sim']:<11}{r['path']:<8}{r['frames']:>7}"
              f"{r['total_cycles']:>11}{r['cycles_per_frame']['mean']:>14}"
              f"{r['sim_cycles_per_s']:>12.0f}{r['sim_cycles_per_cpu_s']:>14.0f}")
    if args.out:
        from common.fsutil import write_json
        write_json(args.out, rows)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
