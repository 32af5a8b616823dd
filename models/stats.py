"""Measured layer statistics of a quantized network: active sites, density, 3x3 neighbour counts.

The one implementation of "how sparse is each layer" (the DSE's :mod:`dse.workload`, the hardware
cycle model (:mod:`models.ops`) and ``benchmarks/layer_stats.py`` all read it). It runs the integer
golden model (:meth:`models.qgraph.QGraph.run_frame_all`) on frames in the token view, so the
sites counted are exactly the ones the hardware streams.

Per node (every node of the graph, in graph order):

- ``shape``: the node's output ``[C, H, W]`` (``[C, 1, 1]`` after global pooling);
- ``active_sites_mean`` / ``active_sites_p95``: active output sites per frame (mean, and the
  95th percentile, linear interpolation as ``numpy.percentile``);
- ``density_mean`` / ``density_p95``: the same divided by ``H * W``;
- ``neighbour_hist`` (3x3 convs only): 10 ints, the number of output sites (summed over the frames)
  whose 3x3 input window (centre included, stride and padding as the conv) holds 0, 1, ..., 9
  active input sites. For a submanifold conv bin 0 stays empty (the centre is active).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from . import ops

__all__ = ["layer_stats", "window_counts"]


def window_counts(in_coords, in_hw, out_coords, *, stride: int = 1) -> torch.Tensor:
    """``[N_out]`` active input sites in the 3x3 window of each output site.

    ``in_coords`` / ``out_coords`` are ``[N, 2]`` ``(y, x)`` rows of one frame, ``in_hw`` the input
    map's ``(H, W)``; the window of output ``(oy, ox)`` is rows ``stride*oy - 1 .. stride*oy + 1``
    and the same for columns (padding 1), as the conv reads it.
    """
    h, w = in_hw
    mask = torch.zeros((1, 1, h, w), dtype=torch.float64)
    if len(in_coords):
        mask[0, 0, in_coords[:, 0], in_coords[:, 1]] = 1.0
    if not len(out_coords):
        return torch.zeros(0, dtype=torch.int64)
    counts = F.conv2d(mask, torch.ones((1, 1, 3, 3), dtype=torch.float64), stride=stride,
                      padding=1)[0, 0]
    return counts[out_coords[:, 0], out_coords[:, 1]].round().long()


def layer_stats(qgraph, frames) -> dict[str, dict]:
    """Statistics of every node of ``qgraph`` over ``frames`` (see the module doc for the keys).

    Parameters
    ----------
    qgraph : models.qgraph.QGraph
        The quantized network (integer golden model).
    frames : iterable of ``(coords [N, 2], feats int [N, C_in])``
        Input frames in the token view (``Bundle.frames``); at least one.

    Returns
    -------
    dict
        ``{node name: {"shape", "active_sites_mean", "active_sites_p95", "density_mean",
        "density_p95"[, "neighbour_hist"]}}`` in graph order.
    """
    sites: dict[str, list[int]] = {n.name: [] for n in qgraph.nodes}
    hists = {n.name: np.zeros(10, dtype=np.int64) for n in qgraph.nodes if _is_3x3(n)}
    n_frames = 0
    for coords, feats in frames:
        env = qgraph.run_frame_all(coords, feats)
        n_frames += 1
        for node in qgraph.nodes:
            oc, _ = env[node.name]
            sites[node.name].append(int(len(oc)))
            if node.name in hists:
                ic, _ = env[node.inputs[0]]
                c = window_counts(ic, tuple(node.in_shape[1:]), oc, stride=node.stride)
                hists[node.name] += np.bincount(c.numpy(), minlength=10)[:10]
    if n_frames == 0:
        raise ValueError("layer_stats needs at least one frame")
    out = {}
    for node in qgraph.nodes:
        arr = np.asarray(sites[node.name], dtype=np.float64)
        C, H, W = (int(v) for v in node.out_shape)
        mean, p95 = float(arr.mean()), float(np.percentile(arr, 95))
        d = {"shape": [C, H, W], "active_sites_mean": mean, "active_sites_p95": p95,
             "density_mean": mean / (H * W), "density_p95": p95 / (H * W)}
        if node.name in hists:
            d["neighbour_hist"] = [int(v) for v in hists[node.name]]
        out[node.name] = d
    return out


def _is_3x3(node) -> bool:
    return ops.of(node).neighbour_stats
