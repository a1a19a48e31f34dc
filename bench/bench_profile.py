#!/usr/bin/env python3
"""Dataset profiling vs CSV import of the same file, measured in the same run.

bench_profile.py BUILD_DIR CSV [--repeats 3] [--target label]

Runs `lathe_profile_bench CSV N [target]`, which imports the CSV into a dataset file (best of N) and then
profiles that file with ProfileDataset (best of N), timing both in wall-clock and process CPU seconds.
The target is profile_cpu_seconds / import_cpu_seconds <= 1.0 (CPU time, because the machine is shared and
wall-clock time is noisy). Also runs pandas' describe() + nunique() + corr() on the same file for scale.
Prints one JSON line.
"""
import argparse
import json
import os
import subprocess
import sys
import time


def find_bench(build_dir):
    for rel in ("bench/lathe_profile_bench", "src/data/lathe_profile_bench", "lathe_profile_bench"):
        path = os.path.join(build_dir, rel)
        if os.path.exists(path):
            return path
    sys.exit(f"lathe_profile_bench not found under {build_dir}; build the target first")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build_dir")
    ap.add_argument("csv")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--target", default="label")
    ap.add_argument("--no-pandas", action="store_true")
    args = ap.parse_args()
    bench = find_bench(args.build_dir)
    with open(args.csv, "rb") as f:  # warm the page cache
        while f.read(1 << 24):
            pass
    out = subprocess.run([bench, args.csv, str(args.repeats), args.target], check=True, capture_output=True, text=True)
    lathe = json.loads(out.stdout.strip().splitlines()[-1])
    result = {"file": args.csv, "bytes": os.path.getsize(args.csv), **lathe}
    if not args.no_pandas:
        import pandas as pd

        df = pd.read_csv(args.csv)
        best = float("inf")
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            df.describe(include="all")
            df.nunique()
            df.select_dtypes("number").corr()
            best = min(best, time.perf_counter() - t0)
        result["pandas_describe_nunique_corr_seconds"] = round(best, 4)
    result["target_met"] = lathe["ratio_cpu"] <= 1.0
    result["cpus"] = os.cpu_count()
    result["load_avg_1m"] = round(os.getloadavg()[0], 2)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
