"""Soak tests, run only with LATHE_SOAK=1 (slow; not part of `make test`).

test_one_gb_csv_import_keeps_rss_bounded: a ~1 GB CSV (the bench data repeated; LATHE_SOAK_CSV names another
file) is uploaded and imported; the server's peak RSS (VmHWM) may grow by less than 300 MB over its idle peak.
"""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import Client, Server, login

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(os.environ.get("LATHE_SOAK") != "1", reason="soak tests run with LATHE_SOAK=1")


def peak_rss_mb(pid):
    text = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+) kB", text).group(1)) / 1024


def one_gb_csv(tmp_path):
    if os.environ.get("LATHE_SOAK_CSV"):
        return Path(os.environ["LATHE_SOAK_CSV"])
    base = ROOT / "bench" / "out" / "bench-1000000.csv"
    if not base.exists():
        subprocess.run([sys.executable, str(ROOT / "bench" / "gen_csv.py"), str(base), "--rows", "1000000",
                        "--seed", "1"], check=True)
    lines = base.read_bytes().split(b"\n", 1)
    out = tmp_path / "big.csv"
    with open(out, "wb") as f:
        f.write(lines[0] + b"\n")
        while f.tell() < 1_000_000_000:
            f.write(lines[1])
    return out


def test_one_gb_csv_import_keeps_rss_bounded(tmp_path):
    csv = one_gb_csv(tmp_path)
    (tmp_path / "srv").mkdir()
    server = Server(tmp_path / "srv").start()
    try:
        client = Client(server.url, login(server.url))
        before = peak_rss_mb(server.proc.pid)
        with open(csv, "rb") as f:
            r = client.post("/api/v1/projects/default/datasets?name=big", data=f,
                            headers={"Content-Type": "text/csv"}, timeout=1800)
        assert r.status_code == 201, r.text
        growth = peak_rss_mb(server.proc.pid) - before
        print(f"imported {r.json()['rows']} rows from {csv.stat().st_size / 1e9:.2f} GB; peak RSS grew {growth:.0f} MB")
        assert growth < 300, f"peak RSS grew by {growth:.0f} MB"
    finally:
        server.stop()
