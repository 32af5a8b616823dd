"""``codesign board``: the accelerator of a build behind a UART on a real board (docs/BOARD.md).

``codesign board --build DIR --sim`` co-simulates the board top's core (UART receiver, frame
loader, the build's accelerator, result sender, UART transmitter) in Verilator with a bit-level
UART model, at the board's own baud divisor, and checks the bytes that come back against the
golden model: ``DIR/board_sim.json``. Without ``--sim`` it places, routes and packs the board top
for the board (``DIR/board/``, ``DIR/board.json``: Fmax against the board's oscillator,
utilisation, the bitstream); with ``--port`` it also programs the board (``openFPGALoader``) and
classifies the frames over the serial port, comparing every result with the golden model:
``DIR/board_run.json``. Exit 0 when every frame matches, 1 on a mismatch, 2 on any other error.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from codesign.options import arg, check_count, check_seed
from common.errors import EXIT_MISMATCH, CodesignError

NAME = "board"
HELP = ("run DIR's accelerator behind a UART on a board (ULX3S): --sim co-simulates the board "
        "top with a UART model; otherwise build its bitstream and, with --port, program the "
        "board and classify frames from the host")


def locks(args) -> list:
    """The directories this command writes (held locked while it runs)."""
    return [args.build]


def add_arguments(p):
    from hw.board import BOARDS, DEFAULT_BAUD

    p.add_argument("--build", required=True, metavar="DIR",
                   help="build directory of `codesign build` (manifest.json, verilog/)")
    p.add_argument("--board", default="ulx3s-85f", choices=tuple(BOARDS),
                   help="the board (default ulx3s-85f)")
    p.add_argument("--baud", type=arg(check_count, "--baud", high=12_000_000),
                   default=DEFAULT_BAUD, help=f"UART rate (default {DEFAULT_BAUD})")
    p.add_argument("--sim", action="store_true",
                   help="co-simulate the board top with a UART model instead of using a board")
    p.add_argument("--port", default=None, metavar="DEV",
                   help="serial port of the board (e.g. /dev/ttyUSB0): program it and classify")
    p.add_argument("--no-program", dest="program", action="store_false",
                   help="with --port: the board already runs this bitstream")
    p.add_argument("--frames", type=arg(check_count, "--frames", high=100_000), default=4,
                   metavar="N", help="frames to send (default 4)")
    p.add_argument("--seed", type=arg(check_seed, "--seed"), default=0,
                   help="frame selection seed")
    p.add_argument("--inputs", default=None, metavar="FRAMES.npz",
                   help="your own frames, as `codesign sim --inputs` takes them")


def _say(msg: str) -> None:
    print(f"board: {msg}", file=sys.stderr, flush=True)


def _ints(t) -> list:
    import numpy as np

    return np.asarray(t).astype(int).tolist()


def _frames(args, manifest):
    from cosim.golden import network_golden

    from .sim import user_frames

    bundle, qgraph, golden = network_golden(manifest)
    if args.inputs is not None:
        frames = user_frames(args.inputs, qgraph, bundle)[: args.frames]
    elif bundle is None:
        raise CodesignError(f"the model of {args.build} has no data set (built from a QGraph "
                            "file): give your frames with --inputs FRAMES.npz")
    else:
        frames = bundle.frames(args.frames, seed=args.seed, split="test")
    return frames, [golden(c, f) for c, f in frames]


def _check(args):
    """Everything that can be wrong before any work: the build, the board, the rate, the tools,
    the port's prerequisites and the output directory."""
    import os

    from cosim.manifest import load_manifest
    from hw.board import board, divisor_for

    manifest = load_manifest(args.build)
    b = board(args.board)
    div = divisor_for(b.clock_hz, args.baud)
    if args.sim and args.port:
        raise CodesignError("--sim and --port exclude each other: simulate, or use the board")
    if args.sim:
        from cosim.runner import require_simulator

        require_simulator("verilator")
    else:
        from hw.pnr import check_tools

        check_tools()
    if args.port:
        try:
            import serial  # noqa: F401
        except ImportError:
            raise CodesignError("pyserial is not installed; run `make setup`") from None
        if args.port.startswith("/") and not os.path.exists(args.port):
            # (a pyserial URL, socket:// or loop://, is left to pyserial)
            raise CodesignError(f"serial port {args.port} does not exist: plug the board in "
                                "and pass the port it appears as (`ls /dev/ttyUSB*`)")
        if args.port.startswith("/") and not os.access(args.port, os.R_OK | os.W_OK):
            raise CodesignError(f"serial port {args.port} is not readable and writable by this "
                                "user (add it to the port's group, e.g. `dialout`)")
        if args.program and shutil.which("openFPGALoader") is None:
            raise CodesignError("openFPGALoader is not on PATH (it programs the board): "
                                "`apt-get install openfpgaloader`, or program the bitstream "
                                "yourself and pass --no-program")
    build = Path(args.build)
    if not os.access(build, os.W_OK):
        raise CodesignError(f"{build} is not writable (board writes {build}/board/)")
    return manifest, b, div


def run(args) -> int:
    from common.digest import file_digest, json_digest
    from common.fsutil import write_json, write_text
    from hw.board import CORE_TOP, DEFAULT_RX_FIFO, core_verilog

    manifest, b, div = _check(args)
    build = Path(args.build)
    frames = expected = checked = None
    if args.sim or args.port:
        frames, expected = _frames(args, manifest)
        checked = {"manifest_sha256": file_digest(build / "manifest.json"),
                   "verilog_sha256": manifest.raw["verilog_sha256"],
                   "frames_sha256": json_digest([[_ints(c), _ints(f)] for c, f in frames]),
                   "expected_sha256": json_digest([[_ints(c), _ints(f)] for c, f in expected])}
    out = build / "board"
    core_file = out / f"{CORE_TOP}.v"
    write_text(core_file, core_verilog(manifest.raw, divisor=div, rx_fifo=DEFAULT_RX_FIFO))
    common = {"board": b.name, "baud": args.baud, "clock_hz": b.clock_hz, "divisor": div,
              "core_verilog_sha256": file_digest(core_file)}
    if args.sim:
        from cosim.board import simulate_board

        (build / "board_sim.json").unlink(missing_ok=True)
        _say(f"co-simulating {len(frames)} frames over the UART at {div} cycles a bit "
             f"({args.baud} baud at {b.clock_hz / 1e6:g} MHz); Verilator builds first")
        res = simulate_board(build, frames, expected, divisor=div, work_dir=out / "sim")
        if res["core_verilog_sha256"] != common["core_verilog_sha256"]:
            raise CodesignError("the simulated core is not the board's (internal error)")
        summary = {**common, **res, "checked": checked}
        write_json(build / "board_sim.json", summary)
        print(json.dumps(summary), flush=True)
        return _verdict(res)
    impl = _bitstream(build, manifest, b, core_file, common)
    if not args.port:
        return 0
    bit = build / impl["bitstream"]["file"]
    if args.program:
        _say(f"programming {b.name} with {bit}")
        proc = subprocess.run(["openFPGALoader", "--board", "ulx3s", str(bit)],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
            raise CodesignError(f"openFPGALoader failed: {tail[0]}")
    (build / "board_run.json").unlink(missing_ok=True)
    res = classify(args.port, args.baud, manifest.raw, frames, expected)
    summary = {**common, **res, "bitstream_sha256": impl["bitstream"]["sha256"],
               "checked": checked}
    write_json(build / "board_run.json", summary)
    print(json.dumps(summary), flush=True)
    return _verdict(res)


def _verdict(res) -> int:
    if res.get("stopped"):
        raise CodesignError(f"the board stopped answering: {res['stopped']}")
    if res["mismatches"]:
        first = (res.get("bad") or [{}])[0]
        raise CodesignError(f"{res['mismatches']} of {res['frames']} frames mismatch; first: "
                            f"{first}", EXIT_MISMATCH)
    _say(f"{res['frames']} frames bit-exact over the UART ({res['bytes_in']} bytes in, "
         f"{res['bytes_out']} out)")
    return 0


def _bitstream(build, manifest, b, core_file, common) -> dict:
    """Place, route and pack the board top (reused when the core and the accelerator it was
    made from are unchanged); ``DIR/board.json``."""
    from common.digest import file_digest
    from common.fsutil import staged_dir, write_json
    from dse.devices import device
    from hw.board import BOARD_TOP, board_plan
    from hw.pnr import implement, timing_line

    record = build / "board.json"
    key = {**common, "verilog_sha256": manifest.raw["verilog_sha256"]}
    if record.is_file():
        old = json.loads(record.read_text())
        bit = build / old.get("bitstream", {}).get("file", "-")
        if old.get("key") == key and bit.is_file() \
                and file_digest(bit) == old["bitstream"]["sha256"]:
            _say(f"bitstream {bit} is up to date")
            return old
    files = board_plan(b)
    dev = device(b.device)
    _say(f"{BOARD_TOP} for {b.name} ({dev.name}) at {b.clock_hz / 1e6:g} MHz")
    sources = {manifest.verilog.name: manifest.verilog.read_text(),
               f"{BOARD_TOP}.il": files[f"{BOARD_TOP}.il"]}
    t0 = time.perf_counter()
    # made beside board/implement and swapped in when done (codesign implement's rule): a
    # stopped run leaves the earlier bitstream and its record as they were
    with staged_dir(build / "board" / "implement") as work:
        impl = implement(core_file.read_text(), top=BOARD_TOP, device=dev, workdir=work,
                         clock_mhz=b.clock_hz / 1e6, progress=_say, extra=sources,
                         lpf=files[f"{BOARD_TOP}.lpf"])
        record.unlink(missing_ok=True)
    impl["bitstream"]["file"] = f"board/implement/{impl['bitstream']['file']}"
    impl["key"] = key
    impl["wall_s"] = round(time.perf_counter() - t0, 1)
    write_json(record, impl)
    _say(timing_line(impl))
    if not impl["timing_met"]:
        raise CodesignError(f"the board top misses the board's {b.clock_hz / 1e6:g} MHz clock "
                            f"({impl['fmax_mhz']} MHz achieved); the bitstream would not work")
    return impl


def classify(port, baud: int, manifest: dict, frames, expected, *, timeout_s: float = 10.0,
             serial_port=None) -> dict:
    """Send each frame over the serial ``port``, wait for its result, compare it with the golden
    model's. ``serial_port`` (an object with ``write``/``read``) replaces the port (tests)."""
    import numpy as np

    from hw.board import shape_from_port
    from hw.protocol import FLAG_EOF, coord_bytes, decode_results, encode_frames, value_bytes

    pi, po = manifest["ports"]["input"], manifest["ports"]["output"]
    i_shape, o_shape = shape_from_port(pi), shape_from_port(po)
    iy, ix = (f["width"] for f in pi["fields"][:2])
    oy, ox = (f["width"] for f in po["fields"][:2])
    site = 1 + coord_bytes(oy) + coord_bytes(ox) + o_shape.channels * value_bytes(
        o_shape.data_width)
    if serial_port is None:
        import serial

        try:
            serial_port = serial.Serial(port, baud, timeout=0.1)
        except (serial.SerialException, OSError) as exc:
            raise CodesignError(f"cannot open {port}: {exc}") from None
    received, bad, classes, stopped, answered = bytearray(), [], [], None, 0
    t0 = time.perf_counter()
    sent, early = 0, b""   # early: bytes read past a frame's end (the next frame's)
    for k, frame in enumerate(frames):
        data = encode_frames([frame], y_bits=iy, x_bits=ix, channels=i_shape.channels,
                             data_bits=i_shape.data_width, signed=i_shape.signed)
        serial_port.write(data)
        sent += len(data)
        buf, skip, deadline = bytearray(), 0, time.perf_counter() + timeout_s
        done = False
        while not done:
            chunk, early = (early or serial_port.read(256)), b""
            if not chunk:
                if time.perf_counter() > deadline:
                    stopped = f"no end of frame {k} within {timeout_s:g} s"
                    break
                continue
            for i, byte in enumerate(chunk):
                buf.append(byte)
                if skip:
                    skip -= 1
                elif byte & FLAG_EOF:
                    done, early = True, bytes(chunk[i + 1:])
                    break
                else:
                    skip = site - 1
        received += buf
        if stopped:
            break
        answered += 1
        got, lost = decode_results(bytes(buf), y_bits=oy, x_bits=ox,
                                   channels=o_shape.channels, value_bits=o_shape.data_width)
        gc, gf = got[0]
        wc = np.asarray(expected[k][0], dtype=np.int64).reshape(-1, 2)
        wf = np.asarray(expected[k][1], dtype=np.int64).reshape(len(wc), o_shape.channels)
        if lost:
            bad.append({"frame": k, "why": "the board lost input bytes (lower --baud)"})
        elif gc.shape != wc.shape or (gc != wc).any() or gf.shape != wf.shape or (gf != wf).any():
            bad.append({"frame": k, "why": "result differs from the golden model"})
        if len(gf) == 1:
            classes.append(int(np.argmax(gf[0])))
    return {"frames": len(frames), "mismatches": len(bad) + len(frames) - answered,
            "bad": bad[:10], "stopped": stopped, "classes": classes, "bytes_in": sent,
            "bytes_out": len(received), "wall_s": round(time.perf_counter() - t0, 2)}
