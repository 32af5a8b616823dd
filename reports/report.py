"""``report.md`` of a flow run: Pareto front, chosen point, per-layer latency, resources against the
device, simulation summary and the measured accuracy of the chosen point."""

from __future__ import annotations

import json
from pathlib import Path

from common.fsutil import write_png, write_text

__all__ = ["write_report", "summary_text", "latency_plot"]


def _interval_text(sim: dict, *, short: bool = False) -> str:
    """The simulated cycles per frame as the II's measure: frames 2..N back to back (the first
    frame's cycles are its latency into an empty pipeline, given apart). Summaries written
    before ``interval_cycles`` existed give the mean over every frame, said so."""
    iv, n = sim.get("interval_cycles") or {}, sim.get("frames", 0)
    if not sim:
        return "(not simulated)"
    if iv.get("mean") is None:
        cpf = sim.get("cycles_per_frame") or {}
        if "interval_cycles" in sim:   # one frame: its latency only
            return f"1 frame, {sim.get('first_frame_cycles')} cycles (its latency; no interval)"
        return (f"{cpf.get('mean', float('nan')):.0f} cycles/frame mean over every frame "
                "(the first frame's latency included)")
    if short:
        return f"{iv['mean']:.0f} cycles/frame (frames 2-{n} back to back)"
    return (f"frames 2-{n} back to back: **{iv['mean']:.1f} cycles per frame** on average "
            f"(max {iv['max']}), the II's measure; the first frame, into an empty pipeline, "
            f"{sim.get('first_frame_cycles')} cycles (its latency)")


def _load(path: Path, default=None):
    if not path.is_file():
        return default
    return json.loads(path.read_text())


def latency_plot(point: dict, sim: dict | None, path: Path, *, title: str) -> None:
    """Bar chart of predicted cycles per layer with the II and the measured cycles per frame."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    layers = point["layers"]
    names = [layer["name"] for layer in layers]
    cycles = [layer.get("pred_cycles") or 0 for layer in layers]
    colors = ["tab:orange" if layer["format"].startswith("dybit") else
              "tab:blue" if layer["format"] == "int8" else "tab:green" for layer in layers]
    fig, ax = plt.subplots(figsize=(max(6.0, 0.5 * len(names) + 2), 4))
    ax.bar(range(len(names)), cycles, color=colors)
    ax.set_xticks(range(len(names)), names, rotation=60, ha="right", fontsize=8)
    ax.set_ylabel("predicted cycles per frame")
    ax.axhline(max(cycles, default=0), color="k", ls="--", lw=1, label="predicted II (max)")
    if sim and (sim.get("interval_cycles") or {}).get("mean") is not None:
        ax.axhline(sim["interval_cycles"]["mean"], color="tab:red", lw=1,
                   label="simulated interval (frames 2..N back to back, mean)")
    for fmt, c in (("int8", "tab:blue"), ("int4", "tab:green"), ("dybit", "tab:orange")):
        ax.bar([], [], color=c, label=fmt)
    ax.legend(fontsize=8)
    ax.set_title(title)
    fig.tight_layout()
    write_png(path, fig)


def _resource_rows(resources: dict | None, device_name: str, util: float):
    """``(label, used, available, share, budget, over)`` per resource. LUT counts every LUT site
    (``lut_total``: logic + LUTRAM + SRL, Vivado's "CLB LUTs"), which is what fills the device."""
    try:
        from dse.devices import device

        dev = device(device_name)
        avail = {"lut": dev.lut, "ff": dev.ff, "dsp": dev.dsp, "bram18": dev.bram18}
    except Exception:  # device table unavailable: show usage only
        avail = {}
    res = resources or {}
    rows = []
    for key, label in (("lut", "LUT (logic + LUTRAM)"), ("ff", "FF"), ("dsp", "DSP"),
                       ("bram18", "BRAM18")):
        used = res.get("lut_total", res.get("lut")) if key == "lut" else res.get(key)
        a = avail.get(key)
        share = f"{100 * used / a:.1f} %" if (used is not None and a) else "n/a"
        budget = int(a * util) if a else None
        over = used is not None and budget is not None and used > budget
        rows.append((label, used, a, share, budget, over))
    return rows


def bound_sentence(front) -> str:
    """What ``bound_ok`` means, and for each point that broke its bound by how much."""
    if "bound_ok" not in front.columns or "max_drop" not in front.columns:
        return ""
    text = ("`bound_ok`: whether a point's measured drop from all-int8 is within the drop it was "
            "solved for (points from the walk or a level search have no bound of their own).")
    broke = front[~front["bound_ok"].astype(bool)]
    if len(broke) and {"accuracy_measured", "accuracy_pred"} <= set(front.columns):
        # the all-int8 accuracy the bounds are drops from: a point's prediction plus its drop
        parts = []
        for _, r in broke.iterrows():
            base = float(r["accuracy_pred"]) + float(r.get("acc_drop", float("nan")))
            drop = 100 * (base - float(r["accuracy_measured"])) if base == base else None
            parts.append(f"point {int(r['point'])} was solved for a drop of at most "
                         f"{100 * max(float(r['max_drop']), 0.0):.2f} points and measures "
                         + (f"{drop:.2f}" if drop is not None else "more"))
        text += " Broken: " + "; ".join(parts) + "."
    return text


def timing_estimate_lines(timing: dict | None, clock_mhz: float, ii_cycles=None,
                          dse_fmax: float | None = None) -> list[str]:
    """The report's paragraph on a Xilinx design's clock: an estimate (``hw/timing.py``), never
    shown as a measurement. ``dse_fmax``: the DSE's own estimate of the point's clock, where it
    counted time at it (``--clock estimate``) rather than at ``clock_mhz``."""
    if not timing or not timing.get("fmax_mhz"):
        return []
    f = timing["fmax_mhz"]
    bound = (timing.get("logic_only") or {}).get("fmax_mhz")
    if dse_fmax:
        against = (f"the DSE counted this point at its Fmax model's {dse_fmax:.1f} MHz, "
                   f"{100 * (dse_fmax / f - 1):+.1f} % from the netlist's estimate")
    else:
        against = (f"the DSE assumed {clock_mhz:g} MHz: "
                   f"{'within' if f >= clock_mhz else '**not within**'} the estimate")
    lines = ["### Clock estimate (Xilinx: no open placer)", "",
             f"**Estimated Fmax {f:.1f} MHz** ({against}). Worst "
             f"register-to-register path `{timing['from']}` -> `{timing['to']}`: "
             f"{timing['delay_ns']:.2f} ns = {timing['logic_ns']:.2f} ns of cells + "
             f"{timing['route_ns']:.2f} ns of assumed routing, {timing['levels']} cells "
             f"({timing['path']})."
             + (f" With no routing at all the worst path allows {bound:.1f} MHz, a bound no "
                "placement beats." if bound else "")
             + (f" At the estimate, the II of {ii_cycles} cycles is {ii_cycles / f:.2f} us."
                if ii_cycles else ""),
             "", f"_{timing['basis']}; see docs/IMPLEMENT.md._"]
    if timing.get("unmodelled"):
        lines[-1] += (" Cells with no timing model (paths through them not timed): "
                      + ", ".join(f"{k} x{v}" for k, v in timing["unmodelled"].items()) + ".")
    return lines


def implementation_lines(impl: dict, ii_cycles=None, latency_cycles=None) -> list[str]:
    """The report's section on a placed and routed design (``build/implementation.json``)."""
    f = impl.get("fmax_mhz")
    lines = ["## Implementation (open place and route: Yosys synth_ecp5, nextpnr-ecp5, ecppack)",
             "",
             f"{impl['device']} ({impl['package']}, speed grade {impl['speed']}), clock "
             f"constraint {impl['clock_mhz']:g} MHz, placer seed {impl.get('seed')}: "
             f"**Fmax {f:.1f} MHz** ({'met' if impl['timing_met'] else '**missed**'})."
             if f is not None else "nextpnr reported no clock.", ""]
    if f and ii_cycles:
        lines += [f"At the measured Fmax, the design point's II of {ii_cycles} cycles is "
                  f"{ii_cycles / f:.2f} us per frame ({f * 1e6 / ii_cycles:,.0f} frames/s)"
                  + (f" and its lone-frame latency of {latency_cycles} cycles "
                     f"{latency_cycles / f:.2f} us." if latency_cycles else "."), ""]
    lines += ["| clock | achieved MHz | constraint MHz |", "|---|---|---|"]
    lines += [f"| `{c}` | {v['achieved_mhz']:.2f} | {v['constraint_mhz']:.2f} |"
              for c, v in impl.get("fmax", {}).items()]
    lines += ["", "| resource | cell | used | available | share |", "|---|---|---|---|---|"]
    for r, v in impl.get("utilisation", {}).items():
        share = 100 * v["used"] / v["available"] if v["available"] else float("nan")
        lines.append(f"| {r} | {v['cell']} | {v['used']} | {v['available']} | {share:.1f} % |")
    if impl.get("worst_paths"):
        lines += ["", "Worst paths (nextpnr):", "", "| from | to | delay ns | logic ns | "
                  "routing ns | cells |", "|---|---|---|---|---|---|"]
        lines += [f"| `{p['from']}` | `{p['to']}` | {p['delay_ns']:.2f} | {p['logic_ns']:.2f} | "
                  f"{p['routing_ns']:.2f} | {p['cells']} |" for p in impl["worst_paths"]]
    b, w = impl["bitstream"], impl["wall"]
    lines += ["", f"Bitstream `build/{b['file']}`: {b['bytes']:,} bytes (sha256 "
              f"`{b['sha256'][:16]}...`). Wall time: synthesis {w['synth_s']:.0f} s, place and "
              f"route {w['pnr_s']:.0f} s, packing {w['pack_s']:.0f} s."]
    return lines


def check_verdicts(build, manifest: dict, sim: dict | None, resources: dict | None,
                   impl: dict | None = None) -> None:
    """Raise unless the simulation summary and the resource counts were made from the Verilog the
    manifest describes, and that Verilog is the file in the build (one line: what changed and
    what to re-run)."""
    from common.digest import file_digest
    from common.errors import CodesignError

    build = Path(build)
    want = manifest.get("verilog_sha256")
    vfile = build / str(manifest.get("verilog", ""))
    if not want or not vfile.is_file() or file_digest(vfile) != want:
        raise CodesignError(f"{vfile} is not the Verilog {build / 'manifest.json'} describes; "
                            "re-run `codesign build` (or the flow with --force)")
    if sim is not None and (sim.get("checked") or {}).get("verilog_sha256") != want:
        raise CodesignError(f"{build / 'sim_summary.json'} was not made from this build's Verilog; "
                            f"re-run `codesign sim --build {build}`")
    if resources is not None and resources.get("verilog_sha256") != want:
        raise CodesignError(f"{build / 'resources.json'} was not made from this build's Verilog; "
                            "re-run `codesign build --synth`")
    if impl is not None and (impl.get("checked") or {}).get("verilog_sha256") != want:
        raise CodesignError(f"{build / 'implementation.json'} was not made from this build's "
                            f"Verilog; re-run `codesign implement --build {build}`")


def write_report(out, cfg) -> dict:
    """Write ``out/report.md`` (and ``out/latency.png``); returns the summary figures."""
    out = Path(out)
    model = _load(out / "model.json", {})
    pick = _load(out / "pick.json", {})
    point = _load(out / "point.json", {"layers": []})
    manifest = _load(out / "build" / "manifest.json", {})
    resources = _load(out / "build" / "resources.json")
    sim = _load(out / "build" / "sim_summary.json")
    acc = _load(out / "accuracy.json", {})
    impl = _load(out / "build" / "implementation.json")
    check_verdicts(out / "build", manifest, sim, resources, impl)
    latency_plot(point, sim, out / "latency.png",
                 title=f"{model.get('model', cfg.model)}: per-layer latency of the chosen point")

    import pandas as pd

    from dse.api import fewer_points_note, plot_front, predictor_line

    front = pd.read_csv(out / "dse" / "pareto.csv")
    refs_csv = out / "dse" / "references.csv"
    refs = pd.read_csv(refs_csv) if refs_csv.is_file() else None
    front_info = _load(out / "dse" / "front.json", {})
    plot_front(out / "pareto.png", front, refs,
               title=f"{model.get('model', cfg.model)} on {cfg.device}: {len(front)} Pareto points",
               budget_text=f"{cfg.util:.0%} utilisation ceiling; chosen point ringed",
               clock_mhz=cfg.clock_mhz, chosen=pick.get("point"),
               estimated=front_info.get("clock") == "estimate")
    # the DSE's own sentence (it knows the II levels it searched); older runs: the general one
    note = front_info.get("note")
    if note is None:
        note = fewer_points_note(cfg.points, len(front))
    if note and not note.endswith("."):
        note += "."
    predictor = _load(out / "dse" / "predictor.json", None)
    if predictor:
        note = " ".join(x for x in (note, predictor_line(predictor) + " (`dse/predictor.json`, "
                                    "docs/ACCURACY.md).") if x)
    note = " ".join(x for x in (note, bound_sentence(front)) if x)
    cols = [c for c in ("point", "accuracy_pred", "accuracy_measured", "bound_ok", "ii_cycles",
                        "latency_cycles", "fps", "dsp", "lut", "ff", "bram18", "formats")
            if c in front.columns]
    lines = [
        f"# Flow report: {model.get('model', cfg.model)} on {cfg.device}",
        "",
        f"Checkpoint `{model.get('checkpoint', '?')}`; device {cfg.device} at "
        f"{cfg.util:.0%} utilisation ceiling; "
        + (f"clock {cfg.clock_mhz:g} MHz" if cfg.clock == "assumed"
           else f"the DSE timed each design at its estimated Fmax (fps and us at an assumed "
                f"{cfg.clock_mhz:g} MHz)")
        + f"; weight formats {cfg.formats}.",
        "",
        "## Latency-accuracy Pareto front",
        "",
        "![Pareto front](pareto.png)",
        "",
        _md_table(front[cols]),
        "",
        *([note, ""] if note else []),
        *(["Reference designs on the same budget (int8 everywhere):", "",
           _md_table(refs[[c for c in ("label", "accuracy_pred", "accuracy_measured",
                                       "ii_cycles", "latency_cycles", "dsp", "lut", "ff",
                                       "bram18") if c in refs.columns]]), ""]
          if refs is not None and len(refs) else []),
        f"Chosen: point {pick.get('point')}, the fastest within {cfg.max_drop:.1%} of the best "
        f"predicted accuracy ({pick.get('best_accuracy_pred', float('nan')):.4f})"
        + ("" if pick.get("best_accuracy_measured") is None else
           f" and of the best measured one ({pick['best_accuracy_measured']:.4f})")
        + "; "
        f"{pick.get('candidates')} of {pick.get('front')} points qualified.",
        "",
        "## Chosen design point",
        "",
        _md_table(pd.DataFrame([{k: v for k, v in layer.items()} for layer in point["layers"]])),
        "",
        "![Per-layer latency](latency.png)",
        "",
        f"## Resources ({'nextpnr' if impl is not None else 'Yosys synth_xilinx'}) "
        "against the device",
        "",
    ]
    if resources is None and impl is not None:
        lines.append("On a Lattice part the resources are nextpnr's: see the implementation.")
    elif resources is None:
        lines.append("Synthesis was skipped (`--no-synth`).")
    else:
        lines += ["| resource | used | device | share | budget | within budget |",
                  "|---|---|---|---|---|---|"]
        rows = _resource_rows(resources, cfg.device, cfg.util)
        for label, used, a, share, budget, over in rows:
            lines.append(f"| {label} | {used} | {a} | {share} | {budget} | "
                         f"{'**no**' if over else 'yes'} |")
        exceeded = [f"{label} {used} > {budget}" for label, used, _, _, budget, o in rows if o]
        if exceeded:
            lines += ["", f"**Over the {cfg.util:.0%} utilisation budget:** {', '.join(exceeded)}. "
                      "The DSE chose this point with its resource model, which is within "
                      "about 10 % of Yosys (`reports/dse_check.md`), so a point at the edge of "
                      "the budget can cross it. The design still fits the device where the "
                      "share is below 100 %; for margin, re-run with a lower `--util`."]
        timed = _load(out / "dse" / "front.json", {}).get("clock") == "estimate"
        est = timing_estimate_lines(resources.get("timing"), cfg.clock_mhz, pick.get("ii_cycles"),
                                    dse_fmax=(point.get("dse") or {}).get("fmax_est_mhz")
                                    if timed else None)
        lines += [""] + est if est else []
    if impl is not None:
        lines += ["", *implementation_lines(impl, pick.get("ii_cycles"),
                                            pick.get("latency_cycles"))]
    lines += ["", "## Co-simulation", ""]
    if sim:
        lines += [
            f"{sim['frames']} frames on {sim['sim']}, stall probability {cfg.stall}: "
            f"**{sim['mismatches']} mismatches**; {_interval_text(sim)} "
            "(simulation speed is in `build/sim_summary.json`; the report holds only figures "
            "that a re-run reproduces).",
            "",
            f"Predicted II of the point: {pick.get('ii_cycles')} cycles; top "
            f"`{manifest.get('top')}`, clock `{manifest.get('clock')}`, reset "
            f"`{manifest.get('reset')}` (active {manifest.get('reset_active')}).",
        ]
    ev = acc.get("eval")
    if ev:
        folds = ev.get("cv_folds", 1)
        pooled = (f", pooled over the {folds} cross-validation folds' models" if folds > 1
                  else "")
        verdict = "**within**" if ev["within_bound"] else "**outside**"
        lines += [
            "", f"## Accuracy of the chosen point (held-out `eval` set: {ev['n']:,} samples"
            f"{pooled}, one sample = {100 / max(ev['n'], 1):.3f} points)", "",
            "| design | accuracy |", "|---|---|",
            f"| all int8 (measured) | {ev['int8']:.4f} |",
            f"| chosen point (predicted) | {acc['predicted']:.4f} |",
            *([f"| chosen point before fine-tuning (measured) | {acc['finetune']['before']:.4f} |",
               f"| chosen point after {acc['finetune']['epochs']} epoch(s) of QAT (measured) | "
               f"{ev['chosen']:.4f} |"] if acc.get("finetune") else
              [f"| chosen point (measured) | {ev['chosen']:.4f} |"]),
            "", f"Measured drop from all-int8: {100 * ev['drop']:.2f} points, {verdict} the "
            f"flow's bound of {100 * ev['max_drop']:.2f} points (`--max-drop`).",
        ]
        if acc.get("finetune"):
            ft = acc["finetune"]
            lines += ["", f"`--finetune {ft['epochs']}`: the chosen point's weights were "
                      f"fine-tuned in its formats ({100 * ft['gain']:+.2f} points on `eval`); "
                      f"the hardware, its co-simulation and the test split below use them "
                      f"(`{ft['checkpoint']}`)."]
    n_test = acc.get("test_n")
    lines += ["", "## Accuracy of the model that goes to hardware (its test split"
              + (f", {n_test:,} samples" if n_test else "") + ", integer reference)", ""]
    if acc:
        imported = acc.get("int8") is None
        lines += [
            "| model | accuracy |", "|---|---|",
            f"| {'QONNX model (qonnx execution)' if imported else 'float'} | {acc['float']:.4f} |",
            *([] if imported else [f"| all int8 | {acc['int8']:.4f} |"]),
            *([] if ev else [f"| chosen point (predicted) | {acc['predicted']:.4f} |"]),
            f"| chosen point (measured) | {acc['chosen']:.4f} |",
        ]
        agree = acc.get("qonnx_agreement")
        if agree:
            lines += [
                "", f"### Agreement with qonnx's execution ({agree['n']} test inputs)", "",
                f"Argmax agreement: {agree['argmax_agreement']:.4f}. Integers identical per "
                "tensor: through the whole integer network, and for the layer alone (fed "
                "qonnx's own input integers).", "",
                "| node | op | ONNX tensor | values | identical | layer alone |",
                "|---|---|---|---|---|---|",
                *[f"| {r['node']} | {r['op']} | `{r['tensor']}` | {r['values']} | "
                  f"{r['identical']:.6f} | "
                  f"{'' if r['isolated'] is None else format(r['isolated'], '.6f')} |"
                  for r in agree["layers"]],
                *([""] + [f"- {n}" for n in agree.get("notes", [])] if agree.get("notes")
                  else []),
            ]
    write_text(out / "report.md", "\n".join(lines) + "\n")
    return {"point": pick.get("point"), "mismatches": (sim or {}).get("mismatches")}


def _md_table(df) -> str:
    if df is None or len(df) == 0:
        return "(empty)"
    cols = list(df.columns)
    rows = ["| " + " | ".join(map(str, cols)) + " |", "|" + "---|" * len(cols)]
    for _, r in df.iterrows():
        cells = []
        for c in cols:
            v = r[c]
            cells.append(f"{v:.4f}" if isinstance(v, float) else str(v))
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def summary_text(out) -> str:
    """One screen: what was chosen, how fast, how big, whether the RTL matched."""
    out = Path(out)
    pick = _load(out / "pick.json", {})
    sim = _load(out / "build" / "sim_summary.json", {})
    res = _load(out / "build" / "resources.json") or {}
    acc = _load(out / "accuracy.json", {})
    manifest = _load(out / "build" / "manifest.json", {})
    impl = _load(out / "build" / "implementation.json")
    point = _load(out / "point.json", {}).get("dse") or {}
    return "\n".join([
        "",
        f"codesign flow: {out}",
        f"  chosen point   {pick.get('point')} of {pick.get('front')} on the front "
        f"(fastest within {pick.get('max_drop', 0):.1%} of the best predicted accuracy)",
        f"  accuracy       predicted {acc.get('predicted', float('nan')):.4f}, measured "
        + (f"{acc['eval']['chosen']:.4f} on {acc['eval']['n']:,} held-out samples (drop "
           f"{100 * acc['eval']['drop']:.2f} points, "
           f"{'within' if acc['eval']['within_bound'] else 'OUTSIDE'} the bound); test split "
           if acc.get("eval") else "")
        + f"{acc.get('chosen', float('nan')):.4f} "
        f"({'QONNX model' if acc.get('int8', 0) is None else 'float'} "
        f"{acc.get('float', float('nan')):.4f})",
        f"  throughput     predicted II {pick.get('ii_cycles')} cycles; simulated "
        + _interval_text(sim, short=True),
        (f"  resources      LUT {res.get('lut_total', res.get('lut'))} (logic + LUTRAM), "
         f"FF {res.get('ff')}, DSP {res.get('dsp')}, BRAM18 {res.get('bram18')}")
        if res else
        ("  resources      " + ", ".join(f"{v['cell']} {v['used']}/{v['available']}"
                                         for v in impl["utilisation"].values())
         + " (nextpnr)") if impl else
        (f"  resources      not synthesised; the DSE's estimate: LUT {point.get('lut')}, "
         f"FF {point.get('ff')}, DSP {point.get('dsp')}, BRAM18 {point.get('bram18')}"),
        *([f"  clock          estimated Fmax {res['timing']['fmax_mhz']:.1f} MHz (Xilinx: cell "
           "delays + assumed routing, no placer; an estimate)"]
          if (res.get("timing") or {}).get("fmax_mhz") else []),
        *([f"  implemented    {impl['device']}: Fmax {impl['fmax_mhz']:.1f} MHz "
           f"({'met' if impl['timing_met'] else 'missed'} at {impl['clock_mhz']:g} MHz), "
           f"bitstream {out / 'build' / impl['bitstream']['file']}"]
          if impl and impl.get("fmax_mhz") else []),
        f"  co-simulation  {sim.get('frames')} frames, {sim.get('mismatches')} mismatches "
        f"({sim.get('sim')}, {sim.get('sim_cycles_per_s', 0):,.0f} cycles/s)",
        f"  Verilog        {out / 'build' / manifest.get('verilog', '?')}",
        f"  report         {out / 'report.md'}",
    ])
