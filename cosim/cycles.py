"""Measured cycles per frame against the DSE's cycle model (one definition: :mod:`dse.cost`).

Each layer is its own pipeline stage, so a frame's predicted period is the largest
:func:`dse.cost.cycles` over the layers (the cycle models of their ops, :mod:`models.ops`, plus the
stage effects of frames back to back: the 1x1 unit's frame turnaround and the global pool's stall on
its producer), evaluated at that frame's own activity (input and output sites of every node, from
the golden model). The measurement is the interval between consecutive end-of-frame output beats
with no stalls (``SimResult.cycles_per_frame``).
"""

from __future__ import annotations

import statistics

__all__ = ["predicted_frame_cycles", "compare_cycles"]


def predicted_frame_cycles(qgraph, point: dict, frames) -> list:
    """``[(cycles, bottleneck layer)]`` per frame from :func:`dse.cost.cycles` at the frame's own
    activity (``(None, None)`` for an empty frame)."""
    from contract.point import LayerChoice
    from dse.cost import cycles
    from dse.workload import from_qgraph, measure_activity

    choices = {c["name"]: LayerChoice.from_dict(c) for c in point["layers"]}
    out = []
    for coords, feats in frames:
        if not len(coords):
            out.append((None, None))
            continue
        w = from_qgraph(qgraph, measure_activity(qgraph, [(coords, feats)]))
        out.append(max(((cycles(layer, choices[layer.name]), layer.name) for layer in w.layers),
                       key=lambda t: t[0]))
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
