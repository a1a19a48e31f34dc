#!/usr/bin/env python3
"""Recipe apply: lathe vs pandas on the same 6-step recipe, measured in the same run.

bench_recipe.py BUILD_DIR [--rows 1000000] [--repeats 3]

The recipe: impute age (mean) -> scale_minmax income -> one_hot city (top 20 + other) -> filter
"age > 18 and score >= 10" -> derive ratio = income * 2 + age / 10 -> dedupe on id (keep first).
Both sides get an equivalent generated table already in memory (lathe: dictionary-encoded Table; pandas:
DataFrame with object strings, as read_csv gives) and time only the transform. Prints one JSON line with both
throughputs and the ratio lathe_rows_per_s / pandas_rows_per_s (higher is better for lathe).
"""
import argparse
import json
import os
import subprocess
import sys
import time


def find_bench(build_dir):
    for rel in ("bench/lathe_recipe_bench", "lathe_recipe_bench", "src/data/lathe_recipe_bench"):
        path = os.path.join(build_dir, rel)
        if os.path.exists(path):
            return path
    sys.exit(f"lathe_recipe_bench not found under {build_dir}; build the target first")


def make_frame(n):
    import numpy as np
    import pandas as pd
    rng = np.random.default_rng(42)
    age = rng.normal(40, 15, n)
    age[rng.integers(0, 10, n) == 0] = np.nan
    cities = np.array([f"city_{c}" for c in range(50)], dtype=object)
    return pd.DataFrame({
        "id": rng.integers(0, n - n // 20, n),
        "age": age,
        "income": rng.normal(50000, 20000, n),
        "city": cities[np.minimum(rng.integers(0, 64, n), 49)],
        "score": rng.integers(0, 100, n),
    })


def pandas_recipe(df):
    import pandas as pd
    df = df.copy(deep=False)
    df["age"] = df["age"].fillna(df["age"].mean())
    mn, mx = df["income"].min(), df["income"].max()
    df["income"] = (df["income"] - mn) / (mx - mn)
    top = df["city"].value_counts().index[:20]
    city = df["city"].where(df["city"].isin(top), "_other")
    dummies = pd.get_dummies(city, prefix="city", dtype=bool)
    df = pd.concat([df.drop(columns=["city"]), dummies], axis=1)
    df = df[(df["age"] > 18) & (df["score"] >= 10)]
    df = df.assign(ratio=df["income"] * 2 + df["age"] / 10)
    return df.drop_duplicates(subset=["id"], keep="first")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build_dir")
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    import pandas as pd

    bench = find_bench(args.build_dir)
    df = make_frame(args.rows)
    best = float("inf")
    rows_out = 0
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        out = pandas_recipe(df)
        best = min(best, time.perf_counter() - t0)
        rows_out = len(out)
    out = subprocess.run([bench, str(args.rows), str(args.repeats)], check=True, capture_output=True, text=True)
    lathe = json.loads(out.stdout.strip().splitlines()[-1])
    pandas_rps = args.rows / best
    print(json.dumps({
        "rows": args.rows,
        "pandas_version": pd.__version__,
        "pandas_seconds": round(best, 4),
        "pandas_rows_out": rows_out,
        "pandas_rows_per_s": round(pandas_rps),
        "lathe_seconds": lathe["seconds"],
        "lathe_rows_out": lathe["rows_out"],
        "lathe_rows_per_s": lathe["rows_per_s"],
        "ratio": round(lathe["rows_per_s"] / pandas_rps, 2),
        "cpus": os.cpu_count(),
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }))


if __name__ == "__main__":
    main()
