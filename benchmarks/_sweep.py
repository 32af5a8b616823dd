"""Independent calibration jobs (synthesis, place and route) on Dask (``distributed``).

:func:`run_jobs` runs ``fn(item)`` for every item on a local cluster of ``workers`` single-threaded
worker processes, or on the cluster behind a running scheduler (``dask scheduler`` on one machine,
``dask worker ADDR`` on each of the others; they must see the same work directory). Results come
back in the order of the items; progress goes to stderr as each job finishes. A job that raises is
reported and returned as ``{"error": ...}``, so one block that does not build does not stop a
sweep. Caching is the job's own business: each script keys its samples by :func:`digest`.
"""

from __future__ import annotations

import sys
import time

__all__ = ["run_jobs", "digest"]


def digest(*parts: str) -> str:
    """SHA-256 of the text parts that decide a cached sample (each followed by a NUL)."""
    import hashlib

    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode() + b"\0")
    return h.hexdigest()


def _guarded(fn, item):
    try:
        return fn(item)
    except Exception as exc:  # reported by the caller, not fatal to the sweep
        return {"error": f"{type(exc).__name__}: {exc}"}


def run_jobs(fn, items: list, *, workers: int = 1, scheduler: str | None = None,
             label=str, describe=None) -> tuple[list, float]:
    """``([fn(item) ...], wall seconds)``; ``label(item)`` and ``describe(result)`` make the
    progress lines."""
    import cloudpickle
    from dask.distributed import Client, LocalCluster, as_completed

    # workers on other machines have the project installed, not benchmarks/: send the job's code
    job_module = getattr(getattr(fn, "func", fn), "__module__", "")
    for mod in (sys.modules[__name__], sys.modules.get(job_module)):
        if mod is not None and mod.__name__ != "__main__":
            cloudpickle.register_pickle_by_value(mod)
    if scheduler:
        client, cluster = Client(scheduler), None
    else:
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               dashboard_address=None)
        client = Client(cluster)
    t0 = time.perf_counter()
    try:
        futures = {client.submit(_guarded, fn, item, pure=False): i
                   for i, item in enumerate(items)}
        out: list = [None] * len(items)
        for n, fut in enumerate(as_completed(futures), 1):
            i = futures[fut]
            r = out[i] = fut.result()
            what = (f"FAILED {r['error']}" if isinstance(r, dict) and "error" in r
                    else (describe(r) if describe else "done"))
            print(f"[{n}/{len(items)}] {label(items[i])}: {what}", file=sys.stderr, flush=True)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    return out, time.perf_counter() - t0
