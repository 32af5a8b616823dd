"""Time a sparse 3x3 conv against the dense ``F.conv2d`` of the same map, on CPU, across densities.

``python benchmarks/sparse_conv.py [--size 128] [--channels 32 64] [--threads 1]`` prints a table:
for each density, the best time of the dense conv, of the sparse conv with its neighbour map
already built (a chain of submanifold layers builds it once), of the map search alone, and the
speed-up of sparse (map included) over dense. Full 3x3 convs (groups 1) and depthwise ones.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.sparse import SparseTensor, sparse_conv, submanifold_map  # noqa: E402

__all__ = ["DENSITIES", "bench", "main"]

DENSITIES = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)


def _best_time(fn, repeat):
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    # the minimum: the machine is shared, and interference only ever adds time
    return min(times)


def bench(*, size=128, channels=32, density=0.1, groups=1, batch=1, repeat=15, seed=0):
    """Best seconds ``{"dense", "sparse", "map"}`` and active ``"sites"`` of one configuration."""
    g = torch.Generator().manual_seed(seed)
    mask = torch.rand(batch, 1, size, size, generator=g) < density
    x = (torch.rand(batch, channels, size, size, generator=g) + 0.1) * mask
    out_c = channels
    w = torch.randn(out_c, channels // groups, 3, 3, generator=g)
    b = torch.randn(out_c, generator=g)
    st = SparseTensor.from_dense(x)

    def fresh_map():
        return submanifold_map(SparseTensor(st.coords, st.feats, st.spatial_shape, batch,
                                            check=False))

    with torch.no_grad():
        dense = _best_time(lambda: F.conv2d(x, w, b, padding=1, groups=groups), repeat)
        submanifold_map(st)
        sparse = _best_time(lambda: sparse_conv(st, w, b, groups=groups), repeat)
        nmap = _best_time(fresh_map, repeat)
    return {"dense": dense, "sparse": sparse, "map": nmap, "sites": st.num_sites}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--channels", type=int, nargs="+", default=[32, 64])
    p.add_argument("--densities", type=float, nargs="+", default=list(DENSITIES))
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeat", type=int, default=15)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    print(f"3x3 conv, {a.size}x{a.size}, batch 1, torch {torch.__version__}, "
          f"{a.threads} thread(s), best of {a.repeat}; times in ms")
    head = (f"{'kind':>9} {'C':>4} {'density':>8} {'sites':>6} {'dense':>8} {'sparse':>8} "
            f"{'map':>7} {'speedup':>8}")
    print(head)
    print("-" * len(head))
    for kind in ("full", "depthwise"):
        for c in a.channels:
            for d in a.densities:
                r = bench(size=a.size, channels=c, density=d, groups=1 if kind == "full" else c,
                          repeat=a.repeat)
                speed = r["dense"] / (r["sparse"] + r["map"])
                print(f"{kind:>9} {c:>4} {d:>8.2f} {r['sites']:>6} {1e3 * r['dense']:>8.3f} "
                      f"{1e3 * r['sparse']:>8.3f} {1e3 * r['map']:>7.3f} {speed:>7.2f}x")
    print("speedup = dense / (sparse + map): sparse includes building its neighbour map")


if __name__ == "__main__":
    main()
