#!/usr/bin/env python3
"""JSON Lines import: lathe vs pandas.read_json(lines=True) on the same file, measured in the same run.

bench_json_import.py BUILD_DIR [--jsonl FILE] [--rows 1000000] [--repeats 3]

Without --jsonl, writes the bench/gen_csv.py data set (same columns, seed and values) as JSON Lines next to
the build dir (floats that are missing in the CSV are null; dates are strings). Then runs
pandas.read_json(lines=True) (best of N, in this process) and `lathe_json_import_bench FILE N` (best of N;
two passes, type inference, zstd, fsync) and prints one JSON line with both times and the ratio
pandas_seconds / lathe_seconds (higher is better for lathe).
"""
import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def find_bench(build_dir):
    for rel in ("bench/lathe_json_import_bench", "src/data/lathe_json_import_bench", "lathe_json_import_bench"):
        path = os.path.join(build_dir, rel)
        if os.path.exists(path):
            return path
    sys.exit(f"lathe_json_import_bench not found under {build_dir}; build the target first")


def make_jsonl(path, rows):
    import pandas as pd
    csv = path + ".csv"
    subprocess.run([sys.executable, os.path.join(HERE, "gen_csv.py"), csv, "--rows", str(rows)], check=True)
    df = pd.read_csv(csv, dtype={"signup_date": str, "last_seen": str})
    df.to_json(path, orient="records", lines=True, double_precision=4)
    os.unlink(csv)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build_dir")
    ap.add_argument("--jsonl")
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    import pandas as pd

    bench = find_bench(args.build_dir)
    path = args.jsonl or os.path.join(args.build_dir, f"bench-{args.rows}.jsonl")
    if not os.path.exists(path):
        make_jsonl(path, args.rows)
    with open(path, "rb") as f:  # warm the page cache for both sides
        while f.read(1 << 24):
            pass
    pandas_best = float("inf")
    rows = 0
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        df = pd.read_json(path, lines=True)
        pandas_best = min(pandas_best, time.perf_counter() - t0)
        rows = len(df)
        del df
    out = subprocess.run([bench, path, str(args.repeats)], check=True, capture_output=True, text=True)
    lathe = json.loads(out.stdout.strip().splitlines()[-1])
    if lathe["rows"] != rows:
        sys.exit(f"row count mismatch: pandas {rows}, lathe {lathe['rows']}")
    print(json.dumps({
        "file": path,
        "bytes": os.path.getsize(path),
        "rows": rows,
        "pandas_seconds": round(pandas_best, 4),
        "lathe_seconds": lathe["seconds"],
        "lathe_mb_per_s": lathe["mb_per_s"],
        "ratio": round(pandas_best / lathe["seconds"], 2),
        "cpus": os.cpu_count(),
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }))


if __name__ == "__main__":
    main()
