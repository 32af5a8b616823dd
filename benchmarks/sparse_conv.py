"""Time a sparse 3x3 conv against the dense ``F.conv2d`` of the same map, on CPU, across densities.

``python benchmarks/sparse_conv.py [--size 128] [--channels 32 64] [--threads 1]`` prints a table:
for each density, the best time of

- ``dense``: ``F.conv2d`` of the zero-filled map (padding 1);
- ``sparse``: the sparse conv with its rulebook already built (every layer after the first on the
  same sites reuses it: a submanifold chain builds it once per frame, as spconv's ``indice_key``);
- ``rulebook``: building the neighbour map and rulebook of fresh sites from scratch;

and two speed-ups over dense: ``cached = dense / sparse`` (a layer that reuses the rulebook) and
``built = dense / (sparse + rulebook)`` (a layer that builds it, e.g. the first after a stride-2
conv). Full 3x3 convs (groups 1) and depthwise ones (groups = channels).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.sparse import SparseTensor, rulebook, sparse_conv  # noqa: E402

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
    """Best seconds ``{"dense", "sparse", "rulebook"}`` and active ``"sites"`` of one setting."""
    g = torch.Generator().manual_seed(seed)
    mask = torch.rand(batch, 1, size, size, generator=g) < density
    x = (torch.rand(batch, channels, size, size, generator=g) + 0.1) * mask
    out_c = channels
    w = torch.randn(out_c, channels // groups, 3, 3, generator=g)
    b = torch.randn(out_c, generator=g)
    st = SparseTensor.from_dense(x)

    def fresh_rulebook():  # new tensor, empty cache: neighbour map and rulebook from scratch
        return rulebook(SparseTensor(st.coords, st.feats, st.spatial_shape, batch, check=False))

    with torch.no_grad():
        dense = _best_time(lambda: F.conv2d(x, w, b, padding=1, groups=groups), repeat)
        rulebook(st)
        sparse = _best_time(lambda: sparse_conv(st, w, b, groups=groups), repeat)
        build = _best_time(fresh_rulebook, repeat)
    return {"dense": dense, "sparse": sparse, "rulebook": build, "sites": st.num_sites}


def _keep_heap_warm() -> bool:
    """Ask glibc to serve large blocks from the heap and keep freed memory (Linux only).

    By default glibc maps each block of >= 128 KiB afresh and unmaps it on free, so every call
    that allocates a multi-MB output page-faults it in again: measured, that made the dense
    conv's time jump between 0.6 and 3 ms for the same 64-channel depthwise conv depending on
    the allocator's state. A runtime reuses its buffers; so does this benchmark, for both sides.
    """
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        return bool(libc.mallopt(m_mmap_threshold, 1 << 30)
                    and libc.mallopt(m_trim_threshold, 1 << 30))
    except (OSError, AttributeError):
        return False


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--channels", type=int, nargs="+", default=[32, 64])
    p.add_argument("--densities", type=float, nargs="+", default=list(DENSITIES))
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeat", type=int, default=15)
    a = p.parse_args(argv)
    warm = _keep_heap_warm()
    torch.set_num_threads(a.threads)
    print(f"3x3 conv, {a.size}x{a.size}, batch 1, torch {torch.__version__}, "
          f"{a.threads} thread(s), best of {a.repeat}, warm heap: {'yes' if warm else 'no'}; "
          "times in ms")
    head = (f"{'kind':>9} {'C':>4} {'density':>8} {'sites':>6} {'dense':>8} {'sparse':>8} "
            f"{'rulebook':>8} {'cached':>7} {'built':>7}")
    print(head)
    print("-" * len(head))
    for kind in ("full", "depthwise"):
        for c in a.channels:
            for d in a.densities:
                r = bench(size=a.size, channels=c, density=d, groups=1 if kind == "full" else c,
                          repeat=a.repeat)
                cached = r["dense"] / r["sparse"]
                built = r["dense"] / (r["sparse"] + r["rulebook"])
                print(f"{kind:>9} {c:>4} {d:>8.2f} {r['sites']:>6} {1e3 * r['dense']:>8.3f} "
                      f"{1e3 * r['sparse']:>8.3f} {1e3 * r['rulebook']:>8.3f} {cached:>6.2f}x "
                      f"{built:>6.2f}x")
    print("cached = dense / sparse (rulebook reused from an earlier layer on the same sites); "
          "built = dense / (sparse + rulebook) (this layer builds it)")


if __name__ == "__main__":
    main()
