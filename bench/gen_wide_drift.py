"""Wide reference/current Parquet pair for the drift benchmark at scale (issue 5: 5M x 100).

Usage: python gen_wide_drift.py OUT_DIR ROWS [N_NUMERIC=80] [N_CATEGORICAL=20]
Numeric columns num_i ~ Normal(mu_i, sigma_i); categorical cat_j with 5..24 categories (seeded
Dirichlet probabilities). In current: num_0..num_9 move by +0.5 sigma and cat_0..cat_4 move 30% of
their mass onto their rarest category; every other column keeps its distribution. 15 of 100 columns
drift, so no dataset drift at Evidently's 0.5 share. Files are written in row groups of 500,000
rows, so generating 5M x 100 needs little memory. Writes OUT_DIR/reference-ROWS.parquet,
OUT_DIR/current-ROWS.parquet (names the anchor's evidently_drift.py reads).
"""
import os
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

out, rows = sys.argv[1], int(sys.argv[2])
n_num = int(sys.argv[3]) if len(sys.argv) > 3 else 80
n_cat = int(sys.argv[4]) if len(sys.argv) > 4 else 20
os.makedirs(out, exist_ok=True)
spec = np.random.default_rng(2026)
mus, sigmas = spec.uniform(-5, 5, n_num), spec.uniform(0.5, 3.0, n_num)
ncats = [5 + (j % 20) for j in range(n_cat)]
probs = [spec.dirichlet(np.full(k, 2.0)) for k in ncats]
labels = [np.array([f"c{j}_{v:02d}" for v in range(k)]) for j, k in enumerate(ncats)]
SHIFTED_NUM, SHIFTED_CAT = set(range(10)), set(range(5))


def moved(p):
    q = p * 0.7
    q[np.argmin(p)] += 0.3
    return q


def write(path, seed, current):
    rng = np.random.default_rng(seed)
    writer = None
    for start in range(0, rows, 500_000):
        n = min(500_000, rows - start)
        cols = {}
        for i in range(n_num):
            mu = mus[i] + (0.5 * sigmas[i] if current and i in SHIFTED_NUM else 0.0)
            cols[f"num_{i}"] = rng.normal(mu, sigmas[i], n)
        for j in range(n_cat):
            p = moved(probs[j]) if current and j in SHIFTED_CAT else probs[j]
            cols[f"cat_{j}"] = labels[j][rng.choice(len(p), n, p=p)]
        table = pa.table(cols)
        if writer is None:
            writer = pq.ParquetWriter(path, table.schema)
        writer.write_table(table)
    writer.close()


write(f"{out}/reference-{rows}.parquet", 1, False)
write(f"{out}/current-{rows}.parquet", 2, True)
print(f"wrote {out}/reference-{rows}.parquet and current-{rows}.parquet ({n_num} numeric, {n_cat} categorical)")
