"""``codesign sim``: co-simulate a built design against its golden model, bit for bit.

Prints progress, then one JSON line (also written to ``DIR/sim_summary.json``). Exit 0 when every
output value matches, 1 on a mismatch (naming the first frame, site and channel), 2 on a deadlock
or timeout (naming the stream that stopped moving) or any other error.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from common.errors import EXIT_DEADLOCK, EXIT_MISMATCH, CodesignError

NAME = "sim"
HELP = ("simulate N frames of the model's data set through DIR's Verilog (cocotb) and compare "
        "with the golden model; writes DIR/sim_summary.json")


def _probability(text: str) -> float:
    try:
        p = float(text)
    except ValueError:
        raise CodesignError(f"--stall must be a number, not {text!r}") from None
    if not 0.0 <= p < 1.0:
        raise CodesignError(f"--stall must be a probability in [0, 1), not {p}")
    return p


def add_arguments(p):
    p.add_argument("--build", required=True, metavar="DIR",
                   help="build directory of `codesign build` (manifest.json, verilog/)")
    p.add_argument("--frames", type=int, default=20, metavar="N", help="frames to simulate")
    p.add_argument("--sim", default="verilator", choices=("verilator", "icarus"),
                   help="HDL simulator (default verilator)")
    p.add_argument("--seed", type=int, default=0, help="frame selection and stall pattern seed")
    p.add_argument("--stall", default="0", metavar="P",
                   help="probability per cycle of an idle input cycle and of output backpressure")
    p.add_argument("--path", default="fast", choices=("fast", "python"),
                   help="fast: HDL wrapper drives the DUT (default); python: cocotb drives "
                        "every cycle")
    p.add_argument("--timeout", type=int, default=200000, metavar="CYCLES",
                   help="cycles without any transfer that count as a deadlock")
    p.add_argument("--split", default="test", help="data set split the frames come from")


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def run(args) -> int:
    from common.fsutil import write_json
    from cosim.golden import network_golden
    from cosim.manifest import load_manifest
    from cosim.runner import require_simulator
    from cosim.session import expected_frames, simulate

    if args.frames < 1:
        raise CodesignError(f"--frames must be a positive integer, not {args.frames}")
    if args.timeout < 1:
        raise CodesignError(f"--timeout must be a positive integer, not {args.timeout}")
    stall = _probability(args.stall)
    build = Path(args.build)
    manifest = load_manifest(build)
    require_simulator(args.sim)
    _say(f"sim: loading model {manifest.model!r} and its golden QGraph")
    bundle, _, golden = network_golden(manifest)
    frames = bundle.frames(args.frames, seed=args.seed, split=args.split)
    if len(frames) < args.frames:
        raise CodesignError(f"the {args.split} split of {manifest.model!r} has only "
                            f"{len(frames)} frames, {args.frames} requested")
    _say(f"sim: golden model on {len(frames)} frames")
    expected = expected_frames(frames, golden)
    _say(f"sim: {args.sim} ({args.path} path), stall {stall}, seed {args.seed}; building "
         "(reused when the Verilog is unchanged)")

    def progress(done, total):
        _say(f"sim: {done}/{total} frames out")

    result = simulate(manifest, frames, expected=expected, sim=args.sim, path=args.path,
                      stall_in=stall, stall_out=stall, seed=args.seed, timeout=args.timeout,
                      progress=progress)
    summary = result.summary()
    write_json(build / "sim_summary.json", summary)
    print(json.dumps(summary), flush=True)
    if result.stopped:
        raise CodesignError(f"deadlock: {result.stopped}", EXIT_DEADLOCK)
    if result.mismatches:
        raise CodesignError(f"{len(result.mismatches)} of {result.frames} frames mismatch; "
                            f"first: {result.mismatches[0]}", EXIT_MISMATCH)
    return 0
