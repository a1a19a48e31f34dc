#!/usr/bin/env python3
"""Writes the CSV import benchmark file.

gen_csv.py OUT.csv --rows 1000000 --seed 1

21 columns: 6 integer columns, 8 float columns (~5% missing), 4 low-cardinality string columns (3-20
categories), 2 date columns (YYYY-MM-DD) and `label` (0/1), which depends on some of the features through
a logistic model so a classifier can learn it. Deterministic for a given seed. Uses numpy.
"""
import argparse

import numpy as np


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    n = args.rows
    cols = {}
    cols["age"] = rng.integers(18, 90, n)
    cols["income"] = rng.integers(0, 250_000, n)
    cols["visits"] = rng.poisson(3, n)
    cols["tenure_days"] = rng.integers(0, 3650, n)
    cols["zip"] = rng.integers(10_000, 99_999, n)
    cols["customer_id"] = np.arange(1, n + 1) * 7 + 1_000_000
    floats = {}
    for i in range(8):
        floats[f"f{i}"] = rng.normal(i, 1 + i, n)
    categories = {
        "plan": ["basic", "plus", "pro"],
        "region": ["north", "south", "east", "west", "central"],
        "channel": ["web", "store", "phone", "partner", "email", "social", "tv", "radio"],
        "segment": [f"seg_{k:02d}" for k in range(20)],
    }
    cat_idx = {name: rng.integers(0, len(vals), n) for name, vals in categories.items()}
    base = np.datetime64("2015-01-01")
    signup = base + rng.integers(0, 3000, n).astype("timedelta64[D]")
    last_seen = signup + rng.integers(0, 700, n).astype("timedelta64[D]")
    # The label: a logistic function of a few features plus noise.
    z = (0.03 * (cols["age"] - 50) + 0.6 * floats["f0"] - 0.25 * floats["f1"] / 2 + 0.3 * (cat_idx["plan"] - 1)
         - 0.2 * (cols["visits"] - 3) + rng.normal(0, 0.5, n))
    label = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(np.int64)

    text = {}
    for name, v in cols.items():
        text[name] = v.astype(str)
    for name, v in floats.items():
        s = np.char.mod("%.4f", v)
        s[rng.random(n) < 0.05] = ""
        text[name] = s
    for name, vals in categories.items():
        text[name] = np.array(vals)[cat_idx[name]]
    text["signup_date"] = signup.astype(str)
    text["last_seen"] = last_seen.astype(str)
    text["label"] = label.astype(str)
    names = list(text.keys())
    assert len(names) == 21, len(names)
    with open(args.out, "w", newline="") as f:
        f.write(",".join(names) + "\n")
        step = 200_000
        for start in range(0, n, step):
            end = min(n, start + step)
            parts = [text[k][start:end].tolist() for k in names]
            f.write("\n".join(map(",".join, zip(*parts))))
            f.write("\n")


if __name__ == "__main__":
    main()
