"""models.stats.layer_stats on a hand-made graph whose statistics are worked out by hand."""

import numpy as np
import pytest
import torch

from models.qgraph import QGraph, QNode
from models.stats import layer_stats, window_counts


def _conv(name, src, c_in, c_out, h, *, k=3, stride=1, groups=1):
    ho = -(-h // stride)
    return QNode(name=name, op="conv", inputs=(src,), in_shape=(c_in, h, h),
                 out_shape=(c_out, ho, ho), kernel=k, stride=stride, groups=groups, relu=True,
                 wformat="int8", lo=0, hi=127, S=8,
                 weight=np.ones((c_out, c_in // groups, k, k), dtype=np.int64),
                 bias=np.zeros(c_out, dtype=np.int64), M=np.ones(c_out, dtype=np.int64))


def _graph():
    # 1 x 4 x 4 input -> 3x3 submanifold -> depthwise 3x3 -> 1x1 -> 3x3 stride 2 -> pool -> fc
    nodes = [
        QNode(name="in", op="input", inputs=(), in_shape=(1, 4, 4), out_shape=(1, 4, 4)),
        _conv("stem", "in", 1, 2, 4),
        _conv("dw", "stem", 2, 2, 4, groups=2),
        _conv("pw", "dw", 2, 2, 4, k=1),
        _conv("down", "pw", 2, 4, 4, stride=2),
        QNode(name="gap", op="gap", inputs=("down",), in_shape=(4, 2, 2), out_shape=(4, 1, 1)),
        QNode(name="fc", op="linear", inputs=("gap",), in_shape=(4, 1, 1), out_shape=(3, 1, 1),
              requant=False, wformat="int8", weight=np.ones((3, 4), dtype=np.int64),
              bias=np.zeros(3, dtype=np.int64), M=np.ones(3, dtype=np.int64)),
    ]
    return QGraph("hand", tuple(nodes))


def _frame(sites):
    c = torch.tensor(sites, dtype=torch.int64).reshape(-1, 2)
    return c, torch.ones((len(c), 1), dtype=torch.int64)


FULL = [(y, x) for y in range(4) for x in range(4)]
FRAMES = [[(0, 0), (0, 1)], [(3, 3)], [], FULL]


def test_layer_stats_by_hand():
    s = layer_stats(_graph(), [_frame(f) for f in FRAMES])
    assert list(s) == ["in", "stem", "dw", "pw", "down", "gap", "fc"]
    # submanifold layers keep the input's sites: 2, 1, 0, 16 per frame
    for name in ("in", "stem", "dw", "pw"):
        assert s[name]["active_sites_mean"] == 19 / 4
        # numpy's linear percentile of [0, 1, 2, 16]: position 0.95 * 3 = 2.85
        assert s[name]["active_sites_p95"] == pytest.approx(2 + 0.85 * 14)
        assert s[name]["density_mean"] == 19 / 4 / 16
    assert s["in"]["shape"] == [1, 4, 4] and s["stem"]["shape"] == [2, 4, 4]
    # 3x3 window counts: frame 0 both sites see 2, frame 1 sees 1; the full 4 x 4 frame has
    # 4 corners (4), 8 edge sites (6), 4 inner sites (9)
    assert s["stem"]["neighbour_hist"] == [0, 1, 2, 0, 4, 0, 8, 0, 0, 4]
    assert s["dw"]["neighbour_hist"] == s["stem"]["neighbour_hist"]
    assert "neighbour_hist" not in s["pw"] and "neighbour_hist" not in s["in"]
    # stride 2 on 4 x 4: output (oy, ox) reads rows 2*oy-1..2*oy+1. Frame 0 -> (0,0) sees both
    # sites, (0,1) sees (0,1); frame 1 -> (1,1) sees 1; frame 3 -> windows of 4, 6, 6 and 9 sites
    assert s["down"]["shape"] == [4, 2, 2]
    assert s["down"]["active_sites_mean"] == (2 + 1 + 0 + 4) / 4
    assert s["down"]["density_mean"] == 7 / 4 / 4
    assert s["down"]["neighbour_hist"] == [0, 2, 1, 0, 1, 0, 2, 0, 0, 1]
    # the pooled vector is one token per frame, the empty frame included
    assert s["gap"] == {"shape": [4, 1, 1], "active_sites_mean": 1.0, "active_sites_p95": 1.0,
                        "density_mean": 1.0, "density_p95": 1.0}


def test_layer_stats_needs_frames():
    with pytest.raises(ValueError, match="at least one frame"):
        layer_stats(_graph(), [])


def test_window_counts_agree_with_the_sparse_neighbour_maps():
    # two implementations: a dense box filter here, the neighbour maps of models.sparse
    from models.sparse import SparseTensor, downsample, neighbour_counts

    g = torch.Generator().manual_seed(2)
    for h, w, stride in ((7, 9, 1), (7, 9, 2), (8, 6, 2)):
        m = torch.rand(1, 1, h, w, generator=g) < 0.35
        st = SparseTensor.from_dense(m.float())
        ic = st.coords[:, 1:]
        oc = ic if stride == 1 else downsample(st)[0][:, 1:]
        assert torch.equal(window_counts(ic, (h, w), oc, stride=stride),
                           neighbour_counts(st, stride=stride))


def test_dse_alias_is_layer_stats():
    from dse.workload import measure_activity

    frames = [_frame(f) for f in FRAMES]
    assert measure_activity(_graph(), frames) == layer_stats(_graph(), frames)


def _bench():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "layer_stats.py"
    spec = importlib.util.spec_from_file_location("layer_stats_bench", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench


def test_layer_stats_benchmark_writes_json_and_plot(tmp_path):
    import json

    from common.fsutil import write_json

    bench = _bench()
    layers = {name: {"op": "conv", **d} for name, d in
              layer_stats(_graph(), [_frame(f) for f in FRAMES]).items()}
    doc = {"model": "hand", "frames": len(FRAMES), "layers": layers}
    write_json(tmp_path / "s.json", doc)
    bench.plot(doc, tmp_path / "s.png")
    assert json.loads((tmp_path / "s.json").read_text())["layers"]["down"]["neighbour_hist"] == [
        0, 2, 1, 0, 1, 0, 2, 0, 0, 1]
    assert (tmp_path / "s.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.json", "s.png"]  # no temporaries


def test_layer_stats_benchmark_never_trains(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CODESIGN_CACHE", str(tmp_path / "cache"))
    assert _bench().main(["--model", "digits", "--out-dir", str(tmp_path / "out")]) == 2
    assert "codesign train --model digits" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
