#!/usr/bin/env python3
"""CSV import: lathe vs pandas.read_csv on the same file, measured in the same run.

bench_import.py BUILD_DIR CSV [--repeats 3]

Runs pandas.read_csv (best of N, in this process) and `lathe_import_bench CSV N` (best of N; it imports into a
dataset file with type inference, zstd and fsync) and prints one JSON line with both times and the ratio
pandas_seconds / lathe_seconds (higher is better for lathe).
"""
import argparse
import json
import os
import subprocess
import sys
import time


def find_bench(build_dir):
    for rel in ("src/data/lathe_import_bench", "bench/lathe_import_bench", "lathe_import_bench"):
        path = os.path.join(build_dir, rel)
        if os.path.exists(path):
            return path
    sys.exit(f"lathe_import_bench not found under {build_dir}; build the target first")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build_dir")
    ap.add_argument("csv")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    import pandas as pd

    bench = find_bench(args.build_dir)
    # Warm the page cache once so neither side pays for the first read from disk.
    with open(args.csv, "rb") as f:
        while f.read(1 << 24):
            pass
    pandas_best = float("inf")
    rows = 0
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        df = pd.read_csv(args.csv)
        pandas_best = min(pandas_best, time.perf_counter() - t0)
        rows = len(df)
        del df
    out = subprocess.run([bench, args.csv, str(args.repeats)], check=True, capture_output=True, text=True)
    lathe = json.loads(out.stdout.strip().splitlines()[-1])
    if lathe["rows"] != rows:
        sys.exit(f"row count mismatch: pandas {rows}, lathe {lathe['rows']}")
    result = {
        "file": args.csv,
        "bytes": os.path.getsize(args.csv),
        "rows": rows,
        "pandas_seconds": round(pandas_best, 4),
        "lathe_seconds": lathe["seconds"],
        "lathe_mb_per_s": lathe["mb_per_s"],
        "ratio": round(pandas_best / lathe["seconds"], 2),
        "cpus": os.cpu_count(),
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
