#!/usr/bin/env python3
# Copied from the team workspace (shared/bench/anchors/gen_dvc_tree.py): the same trees DVC was measured on.
"""Seeded generator of random-byte file trees for the DVC baseline.

Two modes:
  big   : N files (default 20,000) with log-normally distributed sizes scaled so the
          total is exactly TOTAL bytes (default 1 GiB); 100 sub-directories.
  small : N files (default 100,000) of uniform size 1..4 KiB; 100 sub-directories.

Content is random bytes from random.Random(seed) (stdlib, so reproducible across
machines with the same Python major version).  Prints a one-line summary.

Usage:
  gen_dvc_tree.py big   OUT_DIR [--files 20000] [--total 1073741824] [--seed 1]
  gen_dvc_tree.py small OUT_DIR [--files 100000] [--seed 2]
"""
import argparse
import math
import os
import random


def sizes_big(rng, n, total):
    # log-normal weights: many small files, a long tail of large ones
    w = [rng.lognormvariate(0.0, 1.3) for _ in range(n)]
    s = sum(w)
    sizes = [max(1, int(x / s * total)) for x in w]
    # fix rounding so the sum is exactly `total`
    diff = total - sum(sizes)
    sizes[max(range(n), key=lambda i: sizes[i])] += diff
    return sizes


def sizes_small(rng, n):
    return [rng.randint(1024, 4096) for _ in range(n)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["big", "small"])
    ap.add_argument("out")
    ap.add_argument("--files", type=int)
    ap.add_argument("--total", type=int, default=1 << 30)
    ap.add_argument("--seed", type=int)
    ap.add_argument("--dirs", type=int, default=100)
    a = ap.parse_args()
    n = a.files or (20_000 if a.mode == "big" else 100_000)
    seed = a.seed if a.seed is not None else (1 if a.mode == "big" else 2)
    rng = random.Random(seed)
    sizes = sizes_big(rng, n, a.total) if a.mode == "big" else sizes_small(rng, n)
    width = int(math.log10(n)) + 1
    for d in range(a.dirs):
        os.makedirs(os.path.join(a.out, f"d{d:03d}"), exist_ok=True)
    for i, sz in enumerate(sizes):
        p = os.path.join(a.out, f"d{i % a.dirs:03d}", f"f{i:0{width}d}.bin")
        with open(p, "wb") as f:
            f.write(rng.randbytes(sz))
    print(f"mode={a.mode} files={n} total_bytes={sum(sizes)} "
          f"min={min(sizes)} max={max(sizes)} median={sorted(sizes)[n // 2]} seed={seed}")


if __name__ == "__main__":
    main()
