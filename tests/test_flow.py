import json
from pathlib import Path

import pytest

from codesign.cli import main
from codesign.commands.flow import pick_point
from codesign.pipeline import Stage, run_flow
from common.errors import CodesignError


def _stages(tmp, log, fail_at=None):
    def make(name, src):
        out = tmp / f"{name}.txt"

        def run():
            if fail_at == name:
                raise RuntimeError(f"killed in {name}")
            text = (tmp / f"{src}.txt").read_text() if src else "seed"
            out.write_text(text + f"+{name}")
            log.append(name)

        return Stage(name, run, lambda: [out],
                     lambda: {"src": (tmp / f"{src}.txt").read_text() if src else None})

    return [make("a", None), make("b", "a"), make("c", "b")]


def test_flow_resumes_after_a_kill_and_reruns_only_what_changed(tmp_path):
    log = []
    with pytest.raises(RuntimeError, match="killed in c"):
        run_flow(_stages(tmp_path, log, fail_at="c"), tmp_path / ".flow")
    assert log == ["a", "b"] and not (tmp_path / "c.txt").exists()
    log.clear()
    status = run_flow(_stages(tmp_path, log), tmp_path / ".flow")
    assert status == {"a": "skipped", "b": "skipped", "c": "ran"}
    assert (tmp_path / "c.txt").read_text() == "seed+a+b+c"
    # an output edited by hand is noticed and redone; c's input is then unchanged again
    (tmp_path / "b.txt").write_text("tampered")
    log.clear()
    status = run_flow(_stages(tmp_path, log), tmp_path / ".flow")
    assert status == {"a": "skipped", "b": "ran", "c": "skipped"}
    assert (tmp_path / "c.txt").read_text() == "seed+a+b+c"
    log.clear()
    assert set(run_flow(_stages(tmp_path, log), tmp_path / ".flow", force=True).values()) == {"ran"}


def test_pick_point_fastest_within_drop(tmp_path):
    p = tmp_path / "pareto.csv"
    p.write_text("point,accuracy_pred,ii_cycles,latency_cycles\n"
                 "0,0.90,100,150\n1,0.975,300,400\n2,0.98,500,600\n3,0.99,900,1000\n")
    assert pick_point(p, 0.01)["point"] == 2
    assert pick_point(p, 0.0)["point"] == 3
    assert pick_point(p, 0.2)["point"] == 0
    p.write_text("point,accuracy_pred,ii_cycles,latency_cycles\n")
    with pytest.raises(CodesignError, match="no Pareto point"):
        pick_point(p, 0.01)


@pytest.mark.parametrize("argv, msg", [
    (["--model", "nope"], "valid models"),
    (["--device", "XC9999"], "XC9999"),
    (["--formats", "int8,int3"], "valid formats"),
    (["--util", "1.5"], "--util"),
    (["--frames", "0"], "--frames"),
    (["--device", "XCZU3EG", "--implement"], "has no open place-and-route flow"),
])
def test_flow_bad_input_one_line_nothing_written(tmp_path, capsys, argv, msg):
    out = tmp_path / "run"
    assert main(["flow", "--out", str(out), *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and msg in err and len(err.splitlines()) == 1
    assert not out.exists()


@pytest.mark.slow
@pytest.mark.rtl
def test_flow_end_to_end_and_resume(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["flow", "--model", "digits", "--out", str(out), "--frames", "3", "--no-synth",
            "--points", "3"]
    assert main(argv) == 0
    report = (out / "report.md").read_text()
    sim = json.loads((out / "build" / "sim_summary.json").read_text())
    assert sim["mismatches"] == 0 and sim["frames"] == 3
    assert "0 mismatches" in report and Path(out / "latency.png").stat().st_size > 1000
    # the simulated interval is frames 2..N's (the II's measure), the first frame's latency apart
    iv = sim["interval_cycles"]["mean"]
    # the three frames' mean (rounded to 0.01 in the summary) is the first frame and two
    # intervals
    assert abs(3 * sim["cycles_per_frame"]["mean"] - sim["first_frame_cycles"] - 2 * iv) < 0.05
    assert sim["first_frame_cycles"] > iv
    assert f"frames 2-3 back to back: **{iv:.1f} cycles per frame**" in report
    said = capsys.readouterr().out
    assert f"simulated {iv:.0f} cycles/frame (frames 2-3 back to back)" in said
    assert "resources      not synthesised; the DSE's estimate: LUT " in said and "None" not in said
    assert main(argv) == 0
    assert "up to date, skipped" in capsys.readouterr().err
    assert (out / "report.md").read_text() == report
    # --frames is read by the simulation only: DSE, pick and build stay
    argv4 = [a if a != "3" or argv[i - 1] != "--frames" else "4" for i, a in enumerate(argv)]
    assert main(argv4) == 0
    err = capsys.readouterr().err
    for stage in ("model", "dse", "pick", "build", "accuracy"):
        assert f"{stage}: up to date, skipped" in err, stage
    assert "] sim: done" in err and json.loads(
        (out / "build" / "sim_summary.json").read_text())["frames"] == 4
    # Verilog edited by hand: the build is redone (and everything after it), never reported as
    # checked; a summary of other Verilog is refused by the report
    manifest = json.loads((out / "build" / "manifest.json").read_text())
    v = out / "build" / manifest["verilog"]
    v.write_text(v.read_text() + "\n// edited\n")
    from reports.report import check_verdicts
    with pytest.raises(CodesignError, match="is not the Verilog"):
        check_verdicts(out / "build", manifest, None, None)
    assert main(argv4) == 0
    err = capsys.readouterr().err
    assert "] build: done" in err and "] sim: done" in err
    sim = json.loads((out / "build" / "sim_summary.json").read_text())
    assert sim["checked"]["verilog_sha256"] == json.loads(
        (out / "build" / "manifest.json").read_text())["verilog_sha256"]
    sim["checked"]["verilog_sha256"] = "0" * 64
    with pytest.raises(CodesignError, match="sim_summary.json was not made from this build"):
        check_verdicts(out / "build", json.loads((out / "build" / "manifest.json").read_text()),
                       sim, None)


def test_killed_rebuild_leaves_no_manifest_and_no_old_verdict(tmp_path, capsys):
    """SIGKILL while `codesign build --synth` rebuilds into an old build directory: the old
    manifest, verdict and resource counts are gone before the new Verilog is written, so
    `codesign sim` says the build is incomplete instead of checking new Verilog against an old
    description (or reporting an old verdict)."""
    import os
    import signal
    import subprocess
    import sys
    import time

    d = tmp_path / "b"
    assert main(["build", "--model", "digits", "--out", str(d)]) == 0
    (d / "sim_summary.json").write_text('{"frames": 3, "mismatches": 0}')
    old_verilog = json.loads((d / "manifest.json").read_text())["verilog"]
    p = subprocess.Popen([sys.executable, "-m", "codesign", "build", "--model", "digits",
                          "--point", "default", "--format", "int4", "--out", str(d), "--synth"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and p.poll() is None and not (d / "synth").exists():
        time.sleep(0.05)
    assert p.poll() is None, "the build ended before Yosys started"
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    assert (d / old_verilog).is_file()  # the new Verilog, under no manifest
    for stale in ("manifest.json", "sim_summary.json", "resources.json"):
        assert not (d / stale).exists(), stale
    capsys.readouterr()
    assert main(["sim", "--build", str(d)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: no manifest at {d / 'manifest.json'}: run `codesign build` first"


@pytest.mark.slow
@pytest.mark.rtl
def test_flow_killed_mid_simulation_resumes_with_a_true_verdict(tmp_path):
    """SIGKILL a real `codesign flow` while it simulates, run it again: DSE, pick and build are
    reused, the simulation runs again, and the report's verdict names the Verilog it checked."""
    import os
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "run"
    argv = [sys.executable, "-m", "codesign", "flow", "--model", "digits", "--out", str(out),
            "--frames", "3", "--no-synth", "--points", "2"]
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 900
    while time.time() < deadline and p.poll() is None and not (out / "build" / "sim").exists():
        time.sleep(0.1)
    assert p.poll() is None, "the flow ended before it simulated"
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    assert not (out / "build" / "sim_summary.json").exists()
    r = subprocess.run(argv, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-2000:]
    for stage in ("model", "dse", "pick", "build"):
        assert f"{stage}: up to date, skipped" in r.stderr, stage
    sim = json.loads((out / "build" / "sim_summary.json").read_text())
    manifest = json.loads((out / "build" / "manifest.json").read_text())
    assert sim["mismatches"] == 0 and sim["checked"]["verilog_sha256"] == manifest[
        "verilog_sha256"]
    assert "0 mismatches" in (out / "report.md").read_text()


def test_flow_implements_on_lattice_parts_by_default():
    from codesign.pipeline import FlowConfig

    assert FlowConfig(device="LFE5U-85F").implements
    assert not FlowConfig(device="LFE5U-85F", implement=False).implements
    assert not FlowConfig(device="XCZU3EG").implements
    assert FlowConfig(device="ulx3s").lattice


def test_flow_implements_the_chosen_point_at_the_clock_it_was_chosen_for():
    """Under --clock estimate (the default) the DSE chose the point by its estimated Fmax, so
    the implement stage constrains place and route to that estimate (timing met means the
    estimate held); under --clock assumed, or for a point without an estimate, --clock-mhz."""
    from codesign.pipeline import FlowConfig

    point = {"dse": {"fmax_est_mhz": 67.5}}
    assert FlowConfig(device="LFE5U-85F").implement_clock_mhz(point) == 67.5
    assert FlowConfig(device="LFE5U-85F", clock_mhz=90.0).implement_clock_mhz(point) == 67.5
    assumed = FlowConfig(device="LFE5U-85F", clock="assumed", clock_mhz=90.0)
    assert assumed.implement_clock_mhz(point) == 90.0
    assert FlowConfig(device="LFE5U-85F", clock_mhz=90.0).implement_clock_mhz({}) == 90.0


def test_flow_passes_its_clock_objective_to_the_dse():
    """`codesign flow --clock assumed` has the DSE minimise cycles (as `codesign dse --clock`);
    the config checks the value like the command line, and the DSE stage's digest holds it, so
    changing it re-runs the DSE."""
    from codesign.commands import flow
    from codesign.pipeline import FlowConfig
    from common.errors import CodesignError

    assert FlowConfig().clock == "estimate" and flow.defaults().clock == "estimate"
    assert flow.defaults(clock="assumed").clock == "assumed"
    with pytest.raises(CodesignError, match="--clock must be estimate or assumed"):
        FlowConfig(clock="fast")
    src = Path(flow.__file__).read_text()
    assert '"--clock", cfg.clock' in src and '"time_limit", "clock"' in src


def test_flow_least_reaches_the_dse_and_its_digest():
    """`codesign flow --least multipliers` has the DSE keep the fewest multipliers at each
    point's II (as `codesign dse --least`); checked like the command line, in the DSE stage's
    digest."""
    from codesign.commands import flow
    from codesign.pipeline import FlowConfig
    from common.errors import CodesignError

    assert FlowConfig().least == "resources" and flow.defaults().least == "resources"
    assert FlowConfig(least="multipliers").least == "multipliers"
    with pytest.raises(CodesignError, match="--least must be resources or multipliers"):
        FlowConfig(least="luts")
    src = Path(flow.__file__).read_text()
    assert '"--least", cfg.least' in src and '"clock", "least"' in src


def test_pick_point_needs_the_measured_accuracy_within_the_drop_too(tmp_path):
    p = tmp_path / "pareto.csv"
    p.write_text("point,accuracy_pred,accuracy_measured,ii_cycles,latency_cycles\n"
                 "0,0.985,0.970,100,150\n1,0.985,0.982,300,400\n2,0.99,0.99,900,1000\n")
    got = pick_point(p, 0.01)
    assert got["point"] == 1 and got["accuracy_measured"] == pytest.approx(0.982)
    assert got["best_accuracy_measured"] == pytest.approx(0.99)
    # without measurements the predicted accuracy alone decides
    p.write_text("point,accuracy_pred,accuracy_measured,ii_cycles,latency_cycles\n"
                 "0,0.985,,100,150\n1,0.99,,900,1000\n")
    assert pick_point(p, 0.01)["point"] == 0


def test_flow_redoes_its_stages_when_the_code_changes(tmp_path, monkeypatch):
    """A flow re-run after an upgrade of codesign (another generator or cost model) must not
    reuse stages made by the old code: the project's code digest is part of every stage's key."""
    from codesign import pipeline

    digest = pipeline.code_digest()
    assert len(digest) == 64 and digest == pipeline.code_digest()
    log = []
    run_flow(_stages(tmp_path, log), tmp_path / ".flow")
    assert set(run_flow(_stages(tmp_path, log), tmp_path / ".flow").values()) == {"skipped"}
    monkeypatch.setattr(pipeline, "code_digest", lambda: "another version of the code")
    log.clear()
    assert set(run_flow(_stages(tmp_path, log), tmp_path / ".flow").values()) == {"ran"}
    assert log == ["a", "b", "c"]


def test_flow_hands_its_time_limit_to_the_dse(tmp_path, monkeypatch):
    """`codesign flow --time-limit S` reaches `codesign dse --time-limit S`: a DSE that timed out
    inside the flow said to raise a limit the flow had no option for."""
    from codesign.commands import flow as flow_cmd

    seen = []

    def fake_cli(argv):
        seen.append(argv)
        raise CodesignError("stop after the dse's command line")

    monkeypatch.setattr(flow_cmd, "_cli", fake_cli)
    out = tmp_path / "run"
    assert main(["flow", "--model", "digits", "--out", str(out), "--time-limit", "45"]) == 2
    dse = next(a for a in seen if a[0] == "dse")
    assert dse[dse.index("--time-limit") + 1] == "45.0"
