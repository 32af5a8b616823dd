"""``codesign implement``: synthesis, placement, routing, timing and the bitstream of a build, with
open tools (Yosys ``synth_ecp5``, ``nextpnr-ecp5``, ``ecppack``) for a Lattice ECP5 part.

Writes ``DIR/implement/`` (the netlist, the tools' logs, nextpnr's ``report.json`` and the
bitstream ``<top>.bit``; made in ``DIR/.implement.partial/``, which replaces it when the run is
done, so a stopped or failed run leaves an earlier implementation whole, its logs under the
partial name) and ``DIR/implementation.json``: the achieved Fmax of each clock,
utilisation, the worst paths, the bitstream's size and digest and the wall time of each step, tied
to the build's Verilog by its SHA-256. Prints progress, the one-line timing verdict and one JSON
line. A design that does not fit fails after synthesis naming the resource; a clock that is not
met is a measurement, not an error: the verdict names the worst path and what to try.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from common.errors import CodesignError

from ..options import arg, check_count, check_mhz

NAME = "implement"
HELP = ("place, route and time DIR's Verilog for a Lattice ECP5 part with open tools (yosys, "
        "nextpnr-ecp5, ecppack): DIR/implementation.json and the bitstream")


def locks(args) -> list:
    """The directories this command writes (held locked while it runs)."""
    return [args.build]


def add_arguments(p):
    p.add_argument("--build", required=True, metavar="DIR",
                   help="build directory of `codesign build` (manifest.json, verilog/)")
    p.add_argument("--device", default="LFE5U-85F",
                   help="Lattice part of dse/devices.csv (default LFE5U-85F, the ULX3S's)")
    p.add_argument("--clock-mhz", type=arg(check_mhz, "--clock-mhz"), default=None,
                   metavar="F", help="clock constraint for nextpnr (default: the design "
                                     "point's clock)")
    p.add_argument("--seed", type=arg(check_count, "--seed", high=2**31 - 1), default=1,
                   help="nextpnr placer seed (default 1)")
    p.add_argument("--seeds", type=arg(check_count, "--seeds", high=64), default=1,
                   metavar="N",
                   help="place and route with N seeds (--seed, --seed + 1, ...) and keep the "
                        "fastest; each is a full nextpnr run (default 1). A multiplier-bound "
                        "network moves by up to a third between seeds")
    p.add_argument("--no-dsp-registers", dest="dsp_registers", action="store_false",
                   help="place the synthesised netlist as it is; by default the registers "
                        "around each multiplier move into its MULT18X18D (the rewrite is "
                        "proved equal to the synthesised netlist with yosys sat)")
    p.add_argument("--no-ebr-registers", dest="ebr_registers", action="store_false",
                   help="keep the register after each block RAM read in the fabric; by default "
                        "it moves into the DP16KD's output register (the rewrite is proved "
                        "equal to the netlist before it with yosys sat)")
    p.add_argument("--lut-mapper", choices=("abc9", "abc"), default="abc9",
                   help="Yosys LUT mapper: abc9, synth_ecp5's own and the resource and Fmax "
                        "models' (the default; classic ABC where the WebAssembly ABC9 exits "
                        "without output, and the record says so), or abc, classic `abc -lut 4` "
                        "(fewer LUTs in wide multiplexers, slower arithmetic)")


def _say(msg: str) -> None:
    print(f"implement: {msg}", file=sys.stderr, flush=True)


def _check(args):
    """Everything that can be wrong with the inputs, before any work: the build, its Verilog,
    the part, the tools and the output directory."""
    import os

    from cosim.manifest import load_manifest
    from dse.devices import device, lattice_parts
    from hw.pnr import check_tools, nextpnr_device_flag

    manifest = load_manifest(args.build)  # also checks the Verilog against its digest
    dev = device(args.device)
    if not dev.lattice:
        raise CodesignError(
            f"{dev.name} ({dev.family}) has no open place-and-route flow; implement takes the "
            f"Lattice ECP5 parts ({lattice_parts()}); for Xilinx parts use `codesign build "
            "--synth` (Yosys resource counts)")
    nextpnr_device_flag(dev)
    check_tools()
    build = Path(args.build)
    if not os.access(build, os.W_OK):
        raise CodesignError(f"{build} is not writable (implement writes {build}/implement/ and "
                            f"{build}/implementation.json)")
    clock = args.clock_mhz if args.clock_mhz is not None else manifest.clock_mhz
    return manifest, dev, clock


def run(args) -> int:
    from common.digest import file_digest
    from common.fsutil import staged_dir, write_json
    from hw.pnr import implement, timing_line

    manifest, dev, clock = _check(args)
    build = Path(args.build)
    _say(f"{manifest.top} on {dev.name} ({dev.package}, speed {dev.speed}) at {clock:g} MHz")
    built = manifest.raw.get("family")
    if built not in (None, dev.synth_family):
        _say(f"note: this build's multipliers are sized for {built} DSPs; `codesign build "
             f"--device {dev.name}` splits its requantizers' wide products for the MULT18X18D")
    # the run works in a directory of its own that replaces DIR/implement only when it is done:
    # stopped or failed, it leaves an earlier implementation and its record as they were; done,
    # the earlier record goes before its files do, and the new one is written after them
    with staged_dir(build / "implement") as work:
        impl = implement(manifest.verilog.read_text(), top=manifest.top, device=dev,
                         workdir=work, clock_mhz=clock, seed=args.seed,
                         progress=_say, clock_port=manifest.raw.get("clock", "clk"),
                         seeds=args.seeds, dsp_registers=args.dsp_registers,
                         ebr_registers=args.ebr_registers,
                         lut_mapper=args.lut_mapper)
        (build / "implementation.json").unlink(missing_ok=True)
    impl["checked"] = {"manifest_sha256": file_digest(build / "manifest.json"),
                       "verilog_sha256": manifest.raw.get("verilog_sha256")}
    impl["bitstream"]["file"] = f"implement/{impl['bitstream']['file']}"
    write_json(build / "implementation.json", impl)
    _say(timing_line(impl))
    u = impl["utilisation"]
    print(json.dumps({
        "device": dev.name, "fmax_mhz": impl["fmax_mhz"], "clock_mhz": clock,
        "timing_met": impl["timing_met"],
        **{r: u[r]["used"] for r in ("lut", "ff", "dsp", "bram18") if r in u},
        "bitstream": str(build / impl["bitstream"]["file"]),
        "bitstream_bytes": impl["bitstream"]["bytes"], "wall_s": impl["wall"]["total_s"],
        "seed": impl["seed"],
        "implementation": str(build / "implementation.json")}), flush=True)
    return 0
