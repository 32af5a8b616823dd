"""``codesign sim``: co-simulate a built design against its golden model, bit for bit.

Prints progress, then one JSON line (also written to ``DIR/sim_summary.json``). Exit 0 when every
output value matches, 1 on a mismatch (naming the first frame, site and channel), 2 on a deadlock
or timeout (naming the stream that stopped moving) or any other error.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from codesign.options import arg, check_count, check_probability, check_seed
from common.errors import EXIT_DEADLOCK, EXIT_MISMATCH, CodesignError

NAME = "sim"
HELP = ("simulate N frames of the model's data set through DIR's Verilog (cocotb) and compare "
        "with the golden model; writes DIR/sim_summary.json")


#: Cycles without any transfer that count as a deadlock, unless --timeout says otherwise.
DEFAULT_TIMEOUT = 200_000


def locks(args) -> list:
    """The directories this command writes (held locked while it runs)."""
    return [args.build]


def add_arguments(p):
    p.add_argument("--build", required=True, metavar="DIR",
                   help="build directory of `codesign build` (manifest.json, verilog/)")
    p.add_argument("--frames", type=arg(check_count, "--frames", high=100_000), default=20,
                   metavar="N", help="frames to simulate")
    p.add_argument("--sim", default="verilator", choices=("verilator", "icarus"),
                   help="HDL simulator (default verilator)")
    p.add_argument("--seed", type=arg(check_seed, "--seed"), default=0,
                   help="frame selection and stall pattern seed")
    p.add_argument("--stall", default=0.0, type=arg(check_probability, "--stall"), metavar="P",
                   help="probability per cycle of an idle input cycle and of output backpressure")
    p.add_argument("--path", default="fast", choices=("fast", "python"),
                   help="fast: HDL wrapper drives the DUT (default); python: cocotb drives "
                        "every cycle")
    p.add_argument("--timeout", type=arg(check_count, "--timeout"), default=DEFAULT_TIMEOUT,
                   metavar="CYCLES",
                   help="cycles without any transfer that count as a deadlock")
    p.add_argument("--split", default="test", choices=("train", "val", "test"),
                   help="data set split the frames come from")
    p.add_argument("--inputs", default=None, metavar="FRAMES.npz",
                   help="simulate your own frames: .npz with x [N, C, H, W] (float: quantized "
                        "with the model's input quantizer; integer: the quantized input itself) "
                        "and optionally active [N, H, W] (bool: the active sites of sparse "
                        "frames; default every site)")


def user_frames(path, qgraph, bundle) -> list:
    """Frames ``(coords, feats)`` from a user's .npz (see ``--inputs``), checked against the
    network's input (shape, integer range)."""
    import numpy as np
    import torch

    path = Path(path)
    try:
        with np.load(path) as z:
            x = z["x"]
            active = z["active"] if "active" in z.files else None
    except Exception as exc:  # noqa: BLE001  (numpy raises many kinds for a damaged file)
        raise CodesignError(f"--inputs {path} is unreadable ({exc}); expected a .npz with x") \
            from None
    c, h, w = qgraph.input.in_shape
    if x.ndim == 4 and len(x) == 0:
        raise CodesignError(f"--inputs {path}: x holds no frame")
    if x.ndim != 4 or x.shape[1:] != (c, h, w):
        raise CodesignError(f"--inputs {path}: x has shape {list(x.shape)}, the network takes "
                            f"[N, {c}, {h}, {w}]")
    if active is None:
        active = np.ones((len(x), h, w), dtype=bool)
    if active.shape != (len(x), h, w):
        raise CodesignError(f"--inputs {path}: active has shape {list(active.shape)}, not "
                            f"[{len(x)}, {h}, {w}]")
    if np.issubdtype(x.dtype, np.floating):
        if not np.isfinite(x).all():
            raise CodesignError(f"--inputs {path}: x holds NaN or infinite values")
        if bundle is None:
            raise CodesignError(f"--inputs {path} holds float inputs but the build has no model "
                                "to quantize them with: give integer inputs")
        quant = bundle.qnet_base.input_node.quantize_feats
    else:
        quant = None
    frames = []
    for xb, mask in zip(x, active.astype(bool), strict=True):
        coords = torch.nonzero(torch.from_numpy(mask))
        feats = torch.from_numpy(np.ascontiguousarray(xb[:, mask].T))
        feats = quant(feats.double()) if quant else feats.long()
        try:
            qgraph.check_frame(coords, feats)
        except ValueError as exc:
            raise CodesignError(f"--inputs {path}: {exc}") from None
        frames.append((coords, feats))
    return frames


def _ints(t) -> list:
    import numpy as np

    return np.asarray(t, dtype=np.int64).tolist()


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def run(args) -> int:
    from common.digest import file_digest, json_digest
    from common.fsutil import write_json
    from cosim.golden import network_golden
    from cosim.manifest import load_manifest
    from cosim.runner import require_simulator
    from cosim.session import expected_frames, simulate

    stall = args.stall
    build = Path(args.build)
    manifest = load_manifest(build)
    require_simulator(args.sim)
    bundle, qgraph, golden = network_golden(manifest)
    if args.inputs is not None:
        frames = user_frames(args.inputs, qgraph, bundle)[: args.frames]
    elif bundle is None:
        raise CodesignError(f"the model of {build} has no data set (built from a QGraph file): "
                            "give your frames with --inputs FRAMES.npz")
    else:
        frames = bundle.frames(args.frames, seed=args.seed, split=args.split)
    if args.inputs is None and len(frames) < args.frames:
        raise CodesignError(f"the {args.split} split of {manifest.model!r} has only "
                            f"{len(frames)} frames, {args.frames} requested")
    _say(f"sim: {manifest.model!r}, golden model on {len(frames)} frames")
    expected = expected_frames(frames, golden)
    # the verdict names exactly what it checked; an earlier verdict goes before the run starts
    (build / "sim_summary.json").unlink(missing_ok=True)
    checked = {"manifest_sha256": file_digest(manifest.root / "manifest.json"),
               "verilog_sha256": manifest.raw["verilog_sha256"],
               "qgraph_sha256": manifest.raw.get("qgraph_sha256"),
               "frames_sha256": json_digest([[_ints(c), _ints(f)] for c, f in frames]),
               "expected_sha256": json_digest([[_ints(c), _ints(f)] for c, f in expected])}
    _say(f"sim: {args.sim} ({args.path} path), stall {stall}, seed {args.seed}; building "
         "(reused when the Verilog is unchanged)")

    def progress(done, total):
        _say(f"sim: {done}/{total} frames out")

    result = simulate(manifest, frames, expected=expected, sim=args.sim, path=args.path,
                      stall_in=stall, stall_out=stall, seed=args.seed, timeout=args.timeout,
                      progress=progress)
    summary = {**result.summary(), "checked": checked}
    write_json(build / "sim_summary.json", summary)
    print(json.dumps(summary), flush=True)
    if result.stopped:
        hint = (f" (--timeout {args.timeout} is below the default {DEFAULT_TIMEOUT:,}: a design "
                "that is slow rather than stuck reads the same; raise it)"
                if args.timeout < DEFAULT_TIMEOUT else "")
        raise CodesignError(f"deadlock: {result.stopped}{hint}", EXIT_DEADLOCK)
    if result.mismatches:
        raise CodesignError(f"{len(result.mismatches)} of {result.frames} frames mismatch; "
                            f"first: {result.mismatches[0]}", EXIT_MISMATCH)
    return 0
