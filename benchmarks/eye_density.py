"""Input density of the synthetic eye-tracking windows (fraction of active 80x60 sites).

The real AIS2024 data has a mean density near 0.2; ``models.data.eye`` is tuned to match. This
script generates a fresh sample (no cache) and prints the mean and spread overall and by window
kind, plus the generation speed.

    .venv/bin/python benchmarks/eye_density.py [--sequences 24] [--seq-len 40] [--seed 0]

Window kinds: ``blink`` if the lid covers the pupil centre at any of the window's 100 Hz labels,
``moving`` if the pupil moves more than 2 px (sensor) between two consecutive labels, else
``fixation``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from models.data.eye import make_eye_dataset


def _row(name, d):
    if len(d) == 0:
        return f"| {name:<9} | {0:>7} | {'-':>6} | {'-':>6} | {'-':>6} | {'-':>6} | {'-':>6} |"
    p10, p50, p90 = np.percentile(d, [10, 50, 90])
    return (f"| {name:<9} | {len(d):>7} | {d.mean():6.3f} | {d.std():6.3f} | {p10:6.3f} | "
            f"{p50:6.3f} | {p90:6.3f} |")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sequences", type=int, default=24)
    ap.add_argument("--seq-len", type=int, default=40)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    t = time.perf_counter()
    d = make_eye_dataset(seed=args.seed, n_sequences=args.sequences, seq_len=args.seq_len)
    secs = time.perf_counter() - t
    s, n = d["counts"].shape[:2]
    density = (d["counts"].sum(axis=2) > 0).mean(axis=(2, 3))  # [S, T]
    lab = d["labels"].reshape(s, n, 5, 2)
    nxt = np.concatenate([d["labels"][:, 1:], d["labels"][:, -1:]], axis=1).reshape(s, n, 5, 2)
    step = np.linalg.norm(nxt - lab, axis=-1).max(axis=2)
    blink = d["closed"].reshape(s, n, 5).any(axis=2)
    moving = ~blink & (step > 2)
    fixation = ~blink & ~moving

    print(f"synthetic eye tracking, seed {args.seed}: {s} sequences x {n} windows of 50 ms")
    print(f"generation: {secs:.1f} s ({1000 * secs / (s * n):.1f} ms per window), "
          f"{len(d['events'])} events ({len(d['events']) / (s * n * 0.05):.0f} per s)")
    print()
    print("| windows   |   count |   mean |    std |    p10 |    p50 |    p90 |")
    print("|-----------|---------|--------|--------|--------|--------|--------|")
    print(_row("all", density.ravel()))
    print(_row("fixation", density[fixation]))
    print(_row("moving", density[moving]))
    print(_row("blink", density[blink]))
    per_seq = density.mean(axis=1)
    print()
    print(f"per-sequence mean density: min {per_seq.min():.3f}, max {per_seq.max():.3f}")
    nz = d["counts"][d["counts"] > 0]
    print(f"events per active site and polarity: median {np.median(nz):.0f}, "
          f"p90 {np.percentile(nz, 90):.0f}")


if __name__ == "__main__":
    main()
