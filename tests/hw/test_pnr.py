"""Open place and route: ECP5 cell accounting, the fit check, nextpnr's report, and `codesign
implement` on a real build with the real Yosys, nextpnr-ecp5 and ecppack."""

import json
import os

import pytest
from helpers import tiny_qgraph

from codesign.cli import main
from common.digest import file_digest
from common.errors import CodesignError
from dse.devices import budget, device, devices
from hw.pnr import CLOCK_PINS, check_fit, clock_lpf, nextpnr_device_flag, parse_report, timing_line
from hw.synth import summarize_cells


def test_ecp5_cells_count_the_lut_sites_nextpnr_packs():
    # digits at its smallest point: nextpnr's "Total LUT4s: 23670" = 17106 logic + 1092 carry
    # (546 CCU2C) + 3648 RAM + 1824 RAMW (912 TRELLIS_DPR16X4)
    s = summarize_cells({"LUT4": 17106, "CCU2C": 546, "TRELLIS_DPR16X4": 912, "PFUMX": 2992,
                         "L6MUX21": 435, "TRELLIS_FF": 4823, "MULT18X18D": 49, "DP16KD": 7})
    assert (s["lut"], s["carry"], s["lutram"], s["lutram_luts"]) == (17106 + 1092, 546, 912, 5472)
    assert s["lut_total"] == 23670
    assert (s["ff"], s["dsp"], s["bram18"]) == (4823, 49, 7)


def test_lattice_parts_in_the_device_table():
    d = device("ulx3s")
    assert (d.name, d.dsp, d.lut, d.ff, d.bram18, d.dsp_cell) == \
        ("LFE5U-85F", 156, 83640, 83640, 208, "MULT18X18D")
    assert d.lattice and not device("XCZU3EG").lattice
    assert (device("LFE5U-25F").dsp, device("LFE5U-25F").bram18) == (28, 56)
    assert nextpnr_device_flag(device("LFE5UM-85F")) == "--um-85k"
    b = budget("LFE5U-85F", 0.8)
    assert (b.dsp, b.family) == (124, "ecp5") and "EBR" in b.describe()
    with pytest.raises(CodesignError, match="not a part nextpnr-ecp5 places"):
        nextpnr_device_flag(device("XC7Z020"))


def test_clock_pins_are_the_boards_oscillator_pins():
    """Every Lattice package of the device table has a clock pin, the one its board's oscillator
    drives in amaranth-boards (a primary clock input)."""
    from amaranth_boards.orangecrab_r0_2 import OrangeCrabR0_2_85FPlatform
    from amaranth_boards.ulx3s import ULX3S_85F_Platform

    def pin(platform, name):
        res = next(r for r in platform.resources if (r.name, r.number) == (name, 0))
        return res.ios[0].names[0]

    assert CLOCK_PINS["CABGA381"] == pin(ULX3S_85F_Platform, "clk25")
    assert CLOCK_PINS["CSFBGA285"] == pin(OrangeCrabR0_2_85FPlatform, "clk")
    assert {d.package for d in devices().values() if d.lattice} <= set(CLOCK_PINS)
    assert clock_lpf("clk", "CABGA381") == \
        'LOCATE COMP "clk" SITE "G2";\nIOBUF PORT "clk" IO_TYPE=LVCMOS33;\n'
    assert clock_lpf("clk", "QFN72") is None


def test_fit_check_names_the_short_resource():
    cells = summarize_cells({"LUT4": 1000, "TRELLIS_FF": 500, "MULT18X18D": 200, "DP16KD": 2})
    with pytest.raises(CodesignError) as exc:
        check_fit(cells, device("LFE5U-85F"))
    msg = str(exc.value)
    assert "needs 200 MULT18X18D, the part has 156" in msg and "\n" not in msg
    check_fit(summarize_cells({"LUT4": 1000, "MULT18X18D": 20}), device("LFE5U-85F"))
    ram = summarize_cells({"LUT4": 100, "TRELLIS_DPR16X4": 800})  # 3200 RAM LUTs > 24288 / 8
    with pytest.raises(CodesignError, match="distributed RAM"):
        check_fit(ram, device("LFE5U-25F"))


def test_parse_report_takes_fmax_utilisation_and_worst_path():
    rep = {
        "fmax": {"$glbnet$clk": {"achieved": 53.4, "constraint": 100.0}},
        "utilization": {"TRELLIS_COMB": {"used": 10, "available": 100},
                        "MULT18X18D": {"used": 2, "available": 156}},
        "critical_paths": [{"from": "posedge $glbnet$clk", "to": "posedge $glbnet$clk", "path": [
            {"type": "clk-to-q", "delay": 0.5, "from": {"cell": "a", "port": "CLK"},
             "to": {"cell": "a", "port": "Q0"}},
            {"type": "routing", "delay": 1.5, "from": {"cell": "a", "port": "Q0"},
             "to": {"cell": "m", "port": "A0"}},
            {"type": "logic", "delay": 4.0, "from": {"cell": "m", "port": "A0"},
             "to": {"cell": "m", "port": "P0"}},
            {"type": "setup", "delay": 0.1, "from": {"cell": "r", "port": "DI0"},
             "to": {"cell": "r", "port": "DI0"}}]},
            # a longer pad path does not set the clock's Fmax: listed after
            {"from": "<async>", "to": "posedge $glbnet$clk", "path": [
                {"type": "routing", "delay": 9.0, "from": {"cell": "pad", "port": "O"},
                 "to": {"cell": "r", "port": "M"}}]}],
    }
    p = parse_report(rep)
    assert p["fmax"]["$glbnet$clk"] == {"achieved_mhz": 53.4, "constraint_mhz": 100.0}
    w = p["worst_paths"][0]
    assert p["worst_paths"][1]["from"] == "pad.O"
    assert (w["from"], w["to"], w["delay_ns"], w["routing_ns"], w["cells"]) == \
        ("a.CLK", "r.DI0", 6.1, 1.5, 1)
    impl = {"fmax_mhz": 53.4, "clock_mhz": 100.0, "timing_met": False,
            "worst_paths": p["worst_paths"]}
    line = timing_line(impl)
    assert "timing missed: 53.4 MHz" in line and "a.CLK -> r.DI0" in line and "\n" not in line


@pytest.fixture
def tiny_build(tmp_path):
    """The tiny network at its smallest point (one lane, one MAC unit per layer)."""
    g = tiny_qgraph(0)
    g.save(tmp_path / "tiny.json")
    first = tmp_path / "default"
    assert main(["build", "--model", str(tmp_path / "tiny.json"), "--out", str(first)]) == 0
    point = json.loads((first / "manifest.json").read_text())["point"]
    for layer in point["layers"]:
        layer["lanes"] = layer["pe"] = 1
    (tmp_path / "small.json").write_text(json.dumps(point))
    out = tmp_path / "build"
    assert main(["build", "--model", str(tmp_path / "tiny.json"), "--point",
                 str(tmp_path / "small.json"), "--out", str(out)]) == 0
    return out


@pytest.mark.parametrize("argv, needle", [
    (["--device", "XCZU3EG"], "has no open place-and-route flow"),
    (["--device", "NOPE"], "unknown device 'NOPE'"),
    (["--clock-mhz", "-5"], "--clock-mhz: must be a clock"),
    (["--seeds", "0"], "--seeds: must be an integer in [1, 64]"),
])
def test_bad_inputs_are_one_line_and_write_nothing(tiny_build, capsys, argv, needle):
    before = sorted(p.name for p in tiny_build.iterdir())
    assert main(["implement", "--build", str(tiny_build), *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1
    assert sorted(p.name for p in tiny_build.iterdir()) == before


def test_missing_build_is_one_line(tmp_path, capsys):
    assert main(["implement", "--build", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err.strip()
    assert "no manifest" in err and len(err.splitlines()) == 1


def test_changed_verilog_is_refused(tiny_build, capsys):
    m = json.loads((tiny_build / "manifest.json").read_text())
    v = tiny_build / m["verilog"]
    v.write_text(v.read_text() + "\n// edited\n")
    assert main(["implement", "--build", str(tiny_build), "--device", "LFE5U-25F"]) == 2
    err = capsys.readouterr().err.strip()
    assert "changed since `codesign build`" in err and len(err.splitlines()) == 1
    assert not (tiny_build / "implementation.json").exists()


@pytest.fixture
def toy_build(tmp_path):
    """A small block with the stream ports (the requantizer of cosim.toy): the tools in seconds."""
    from cosim.toy import write_toy_build

    write_toy_build(tmp_path / "toy", lanes=2, channels=4)
    return tmp_path / "toy"


def test_implement_a_block_on_ecp5(toy_build, capsys):
    """The real Yosys, nextpnr-ecp5 and ecppack end to end: Fmax, utilisation, a bitstream, tied
    to the Verilog it was made from, and a report section."""
    assert main(["implement", "--build", str(toy_build), "--device", "LFE5U-25F",
                 "--clock-mhz", "100"]) == 0
    out = capsys.readouterr()
    impl = json.loads((toy_build / "implementation.json").read_text())
    m = json.loads((toy_build / "manifest.json").read_text())
    assert impl["checked"]["verilog_sha256"] == m["verilog_sha256"]
    assert impl["fmax_mhz"] > 0 and impl["timing_met"] == (impl["fmax_mhz"] >= 100.0)
    assert json.loads(out.out.strip().splitlines()[-1])["fmax_mhz"] == impl["fmax_mhz"]
    # the clock input on the package's clock pin, as nextpnr read it from the LPF
    assert impl["clock_pin"] == "A9"
    assert 'SITE "A9"' in (toy_build / "implement" / f"{m['top']}.lpf").read_text()
    assert impl["utilisation"]["dsp"]["used"] == impl["synth_cells"]["dsp"]
    # the DSP register rewrite ran and was proved (this toy's multipliers keep theirs: its
    # registers have a reset); the synthesised netlist is kept beside the placed one
    assert impl["dsp_registers"]["dsp"] == impl["synth_cells"]["dsp"]
    proof = impl["dsp_registers"]["proof"]
    assert proof["proved"] is True
    work = toy_build / "implement"
    assert proof["synth_netlist_sha256"] == file_digest(work / f"{m['top']}_synth.json")
    # the block RAM register rewrite ran after it and was proved from its netlist to the one
    # placed (hw.ecp5_ebr)
    ebr = impl["ebr_registers"]
    assert ebr["proof"]["proved"] is True
    assert ebr["proof"]["from_netlist_sha256"] == proof["netlist_sha256"]
    assert ebr["proof"]["netlist_sha256"] == file_digest(work / f"{m['top']}.json")
    bit = toy_build / impl["bitstream"]["file"]
    assert bit.stat().st_size == impl["bitstream"]["bytes"] > 10_000
    assert "timing met" in out.err or "timing missed" in out.err
    from reports.report import implementation_lines

    text = "\n".join(implementation_lines(impl, ii_cycles=1000))
    assert f"Fmax {impl['fmax_mhz']:.1f} MHz" in text and "MULT18X18D" in text
    assert f"{1000 / impl['fmax_mhz']:.2f} us per frame" in text


def test_implement_keeps_the_fastest_of_several_seeds(toy_build, capsys):
    """--seeds N: one synthesis, N placements; the record lists each seed's Fmax and keeps the
    fastest, whose report, log and configuration (the bitstream's source) are the ones kept."""
    assert main(["implement", "--build", str(toy_build), "--device", "LFE5U-25F",
                 "--clock-mhz", "100", "--seed", "3", "--seeds", "2"]) == 0
    impl = json.loads((toy_build / "implementation.json").read_text())
    tried = impl["seeds"]
    assert [t["seed"] for t in tried] == [3, 4]
    assert all(t["fmax_mhz"] > 0 and t["pnr_s"] > 0 for t in tried)
    best = max(tried, key=lambda t: t["fmax_mhz"])
    assert (impl["seed"], impl["fmax_mhz"]) == (best["seed"], best["fmax_mhz"])
    work = toy_build / "implement"
    report = parse_report(json.loads((work / "report.json").read_text()))
    assert min(v["achieved_mhz"] for v in report["fmax"].values()) == impl["fmax_mhz"]
    top = json.loads((toy_build / "manifest.json").read_text())["top"]
    assert (work / f"{top}.config").read_bytes() == \
        (work / f"{top}_seed{best['seed']}.config").read_bytes()
    assert all((work / f"nextpnr_seed{t['seed']}.log").is_file() for t in tried)
    assert impl["wall"]["pnr_s"] == pytest.approx(sum(t["pnr_s"] for t in tried), abs=0.11)
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["seed"] == best["seed"]


def test_implement_without_dsp_registers_places_the_synthesised_netlist(toy_build):
    """--no-dsp-registers after a run with them: nothing of the earlier rewrite or its proof
    stays beside the netlist placed."""
    assert main(["implement", "--build", str(toy_build), "--device", "LFE5U-25F",
                 "--clock-mhz", "100"]) == 0
    assert (toy_build / "implement" / "dsp_check").is_dir()
    assert main(["implement", "--build", str(toy_build), "--device", "LFE5U-25F",
                 "--clock-mhz", "100", "--no-dsp-registers"]) == 0
    impl = json.loads((toy_build / "implementation.json").read_text())
    top = json.loads((toy_build / "manifest.json").read_text())["top"]
    assert impl["dsp_registers"] is None and "dsp_s" not in impl["wall"]
    assert not (toy_build / "implement" / f"{top}_synth.json").exists()
    assert not (toy_build / "implement" / "dsp_check").exists()


def test_a_stopped_implement_leaves_the_earlier_one_whole(toy_build, monkeypatch):
    """A second run that fails (or is stopped) half way, after its tools wrote files: the first
    run's record, bitstream and directory stay as they were, the record still naming its
    bitstream; the failed run's files stay under the partial name, and a later run clears them."""
    import hw.pnr

    argv = ["implement", "--build", str(toy_build), "--device", "LFE5U-25F", "--clock-mhz", "100"]
    assert main(argv) == 0
    record = (toy_build / "implementation.json").read_bytes()
    impl = json.loads(record)
    bit = toy_build / impl["bitstream"]["file"]
    before = {f.name: file_digest(f) for f in (toy_build / "implement").iterdir() if f.is_file()}
    real = hw.pnr.implement

    def stopped(*a, workdir, **kw):
        (workdir / "nextpnr.log").write_text("half a run\n")
        (workdir / bit.name).write_bytes(b"not a bitstream")
        raise CodesignError("nextpnr-ecp5 failed (exit 1): placement stopped")

    monkeypatch.setattr(hw.pnr, "implement", stopped)
    assert main(argv) == 2
    assert (toy_build / "implementation.json").read_bytes() == record
    assert file_digest(bit) == impl["bitstream"]["sha256"]
    assert {f.name: file_digest(f) for f in (toy_build / "implement").iterdir()
            if f.is_file()} == before
    partial = toy_build / ".implement.partial"
    assert (partial / "nextpnr.log").read_text() == "half a run\n"
    monkeypatch.setattr(hw.pnr, "implement", real)
    assert main(argv + ["--no-dsp-registers", "--no-ebr-registers"]) == 0
    assert not partial.exists()
    assert json.loads((toy_build / "implementation.json").read_text())["dsp_registers"] is None


@pytest.mark.slow
def test_implement_a_network_on_ecp5(tiny_build, capsys):
    """The real tools end to end on a small network (minutes): Fmax, utilisation, a bitstream."""
    assert main(["implement", "--build", str(tiny_build), "--device", "LFE5U-25F",
                 "--clock-mhz", "50"]) == 0
    out = capsys.readouterr()
    summary = json.loads(out.out.strip().splitlines()[-1])
    impl = json.loads((tiny_build / "implementation.json").read_text())
    m = json.loads((tiny_build / "manifest.json").read_text())
    assert impl["checked"]["verilog_sha256"] == m["verilog_sha256"]
    assert impl["device"] == "LFE5U-25F" and impl["clock_mhz"] == 50.0
    assert impl["fmax_mhz"] > 0 and summary["fmax_mhz"] == impl["fmax_mhz"]
    assert impl["timing_met"] == (impl["fmax_mhz"] >= 50.0)
    u = impl["utilisation"]
    assert u["dsp"]["cell"] == "MULT18X18D" and u["dsp"]["available"] == 28
    # every multiplier Yosys mapped is placed
    assert u["dsp"]["used"] == impl["synth_cells"]["dsp"] > 0
    assert u["lut"]["used"] > 0 and u["ff"]["used"] > 0
    # the MAC units' operand and product registers went into their MULT18X18Ds, proved
    regs = impl["dsp_registers"]
    assert regs["proof"]["proved"] is True and regs["output"] > 0 and regs["inputa"] > 0
    assert u["ff"]["used"] < impl["synth_cells"]["ff"]
    bit = tiny_build / impl["bitstream"]["file"]
    assert bit.is_file() and bit.stat().st_size == impl["bitstream"]["bytes"] > 10_000
    assert impl["worst_paths"] and impl["worst_paths"][0]["delay_ns"] > 0
    assert ("timing met" in out.err) or ("timing missed" in out.err)


def _router_log(overuse):
    return "".join(f"Info:     iter={i} wires={800000 + i} overused={o} overuse={o} archfail=NA\n"
                   for i, o in enumerate(overuse, 1))


# router2's overuse per iteration in two real runs on LFE5U-85F: the eye backbone at 97 % of
# the EBR (iterations 1, 5, 10, ... as logged, the rest filled in between) and the digits
# network at lanes 1, seed 1, which sat at 2-4 wires for 14 iterations and then converged
_EYE = [88754, 40000, 25000, 18000, 15784, 12000, 9000, 8000, 7000, 6480, 5600, 5000, 4600, 4300,
        4047, 3800, 3600, 3450, 3350, 3303, 3200, 3100, 3000, 2950, 3000, 3100, 3200, 3300, 3400,
        3465, 3600, 3750, 3900, 4000, 4104, 4394, 4700, 5000, 5200, 5344, 5553, 5813, 6269, 6553]
_DIGITS = [11486, 5149, 2132, 1007, 434, 214, 105, 66, 32, 24, 16, 10, 8, 5, 4, 4, 4, 3, 3, 3, 3,
           3, 4, 3, 4, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 1, 0]


def test_router_divergence_is_told_from_a_slow_convergence():
    from hw.pnr import ROUTER_PATIENCE, router_diverging

    assert ROUTER_PATIENCE == 20
    why = router_diverging(_router_log(_EYE))
    assert why == ("routing does not converge: 2,950 overused wires at router2's iteration 24, "
                   "6,553 at iteration 44")
    assert router_diverging(_router_log(_EYE[:43])) is None  # 19 iterations after its least
    for n in range(1, len(_DIGITS) + 1):
        assert router_diverging(_router_log(_DIGITS[:n])) is None
    assert router_diverging("Info: Running router2...\n") is None
    # a second routing pass starts its own count
    assert router_diverging(_router_log(_EYE) + _router_log(_EYE[:10])) is None


def test_a_watched_tool_is_stopped_in_one_line_when_its_log_says_so(tmp_path):
    """run_logged's watch: a real process logging a router whose overuse grows is killed at the
    first poll that sees it, long before its timeout, with one line naming the cause."""
    import os
    import sys
    import time

    from hw.pnr import router_diverging
    from hw.synth import run_logged

    script = tmp_path / "router.py"
    pid = tmp_path / "pid"
    script.write_text(
        "import os, sys, time\n"
        f"open({str(pid)!r}, 'w').write(str(os.getpid()))\n"
        "i = 0\n"
        "while True:\n"
        "    i += 1\n"
        "    o = 1000 if i < 5 else 1000 + 100 * i\n"
        "    print(f'Info:     iter={i} wires=1 overused={o} overuse={o} archfail=NA', "
        "flush=True)\n"
        "    time.sleep(0.02)\n")
    t0 = time.monotonic()
    with pytest.raises(CodesignError) as exc:
        run_logged([sys.executable, str(script)], cwd=tmp_path, log=tmp_path / "r.log",
                   timeout=120, what="toy router", watch=router_diverging, poll=0.2)
    msg = str(exc.value)
    assert time.monotonic() - t0 < 60 and len(msg.splitlines()) == 1
    assert msg.startswith("toy router: routing does not converge: 1,000 overused wires at "
                          "router2's iteration 1") and msg.endswith(f"see {tmp_path / 'r.log'}")
    with pytest.raises(ProcessLookupError):
        os.kill(int(pid.read_text()), 0)
    # without a watch, the same call runs a tool to its end as before
    ok = tmp_path / "ok.py"
    ok.write_text("print('done')\n")
    proc = run_logged([sys.executable, str(ok)], cwd=tmp_path, log=tmp_path / "ok.log",
                      timeout=60, what="toy")
    assert proc.returncode == 0 and (tmp_path / "ok.log").read_text() == "done\n"


_HOLDS_A_TOOL = """
import sys
from codesign.cli import _on_sigterm
import signal
signal.signal(signal.SIGTERM, _on_sigterm)
from hw.synth import run_logged
try:
    run_logged(["sh", "-c", "echo $$ > {pid}; exec sleep 120"], cwd={cwd!r}, log={log!r},
               timeout=300, what="toy tool")
except BaseException as exc:
    print(type(exc).__name__, flush=True)
    raise
"""


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="needs /proc")
@pytest.mark.parametrize("sig", ["SIGTERM", "SIGKILL"])
def test_a_tool_dies_with_the_command_that_started_it(tmp_path, sig):
    """A nextpnr left routing for 30 min after its `codesign implement` was stopped: the tool a
    command runs (here a sleep, through run_logged) is gone soon after the command is, whether it
    was terminated (the CLI's handler runs run_logged's `finally`) or killed (the watchdog)."""
    import signal
    import subprocess
    import sys
    import time

    pid = tmp_path / "pid"
    code = _HOLDS_A_TOOL.replace("{pid}", str(pid)).replace("{cwd!r}", repr(str(tmp_path))) \
        .replace("{log!r}", repr(str(tmp_path / "t.log")))
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                         cwd=os.getcwd())
    deadline = time.time() + 30
    while time.time() < deadline and not (pid.exists() and pid.read_text().strip()):
        time.sleep(0.1)
    tool = int(pid.read_text())
    time.sleep(2.5)  # the watchdog (started beside the tool, scanning twice a second) saw it
    assert _alive(tool)
    os.kill(p.pid, getattr(signal, sig))
    out, _ = p.communicate(timeout=30)
    deadline = time.time() + 10
    while time.time() < deadline and _alive(tool):
        time.sleep(0.2)
    assert not _alive(tool)
    if sig == "SIGTERM":  # the command saw it as an exception: its finally blocks ran
        assert out.strip() == "_Terminated"


def _alive(pid):
    try:
        os.kill(pid, 0)
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
