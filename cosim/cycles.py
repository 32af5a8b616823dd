"""Measured cycles per frame against the per-block formulas of :mod:`hw.perf`.

Each layer is its own pipeline stage, so a frame's predicted period is the largest
``hw.perf.layer_cycles`` over the nodes, evaluated at that frame's own activity (input and output
sites of every node, from the golden model). The measurement is the interval between consecutive
end-of-frame output beats with no stalls (``SimResult.cycles_per_frame``).
"""

from __future__ import annotations

import statistics

__all__ = ["predicted_frame_cycles", "compare_cycles"]


def predicted_frame_cycles(qgraph, point: dict, frames) -> list:
    """``[(cycles, bottleneck node)]`` per frame from :func:`hw.perf.layer_cycles`."""
    from hw.perf import layer_cycles
    from hw.point import LayerChoice

    choices = {c["name"]: LayerChoice(c["name"], c["format"], c["lanes"], c["pe"])
               for c in point["layers"]}
    out = []
    for coords, feats in frames:
        if not len(coords):
            out.append((None, None))
            continue
        env = qgraph.run_frame_all(coords, feats)
        best = (0, None)
        lanes_of = {}
        for n in qgraph.nodes:
            if n.op == "input":
                continue
            src = n.inputs[0]
            stats = {"active_sites_mean": len(env[n.name][0]),
                     "active_in_mean": len(env[src][0])}
            choice = choices.get(n.name)
            cyc = layer_cycles(n, choice, stats, lanes=lanes_of.get(src, 1))
            lanes_of[n.name] = choice.pe if choice else lanes_of.get(src, 1)
            best = max(best, (cyc, n.name), key=lambda t: t[0])
        out.append(best)
    return out


def compare_cycles(measured, predicted) -> dict:
    """Ratios measured / predicted over the frames after the first (pipeline filled)."""
    pairs = [(m, p) for m, (p, _) in zip(measured[1:], predicted[1:], strict=False) if p]
    if not pairs:
        return {"frames": 0}
    ratios = [m / p for m, p in pairs]
    return {"frames": len(pairs), "measured_mean": statistics.fmean(m for m, _ in pairs),
            "predicted_mean": statistics.fmean(p for _, p in pairs),
            "ratio_mean": round(statistics.fmean(ratios), 3),
            "ratio_min": round(min(ratios), 3), "ratio_max": round(max(ratios), 3)}
