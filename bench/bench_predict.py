"""Predict throughput: lathe's predict route vs lathe's own authenticated no-op route, and vs the same
model served by FastAPI + uvicorn (MLflow-style scoring). wrk, 1 row per request, 32 connections, loopback,
all measured in this run on this machine.

    /usr/bin/python3 bench/bench_predict.py BUILD_DIR TRAIN.csv [--duration 10]
"""
import argparse
import csv
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

HERE = Path(__file__).resolve().parent
PASSWORD = "bench-password-123"


def wrk(url, body, headers, duration, connections=32):
    lua = "wrk.method = 'POST'\nwrk.body = [==[" + body + "]==]\n"
    for k, v in headers.items():
        lua += f"wrk.headers['{k}'] = '{v}'\n"
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(lua)
        script = f.name
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", "-s", script, url],
                         capture_output=True, text=True, check=True).stdout
    os.unlink(script)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))

    def pct(p):
        m = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)", out)
        v, unit = float(m.group(1)), m.group(2)
        return v / 1000 if unit == "us" else v * 1000 if unit == "s" else v

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": rps, "p50_ms": pct(50), "p99_ms": pct(99), "non2xx": int(errors.group(1)) if errors else 0}


def wait_http(url, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            requests.get(url, timeout=1)
            return
        except requests.RequestException:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def typed_row(header, values, label):
    row = {}
    for k, v in zip(header, values):
        if k == label:
            continue
        if v == "":
            row[k] = None
            continue
        try:
            row[k] = int(v)
        except ValueError:
            try:
                row[k] = float(v)
            except ValueError:
                row[k] = v
    return row


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("csv")
    ap.add_argument("--label", default="label")
    ap.add_argument("--duration", type=int, default=10)
    args = ap.parse_args()
    lathe = Path(args.build).resolve() / "lathe"

    with open(args.csv) as f:
        reader = csv.reader(f)
        header = next(reader)
        instance = typed_row(header, next(reader), args.label)

    tmp = Path(tempfile.mkdtemp(prefix="lathe-bench-"))
    env = dict(os.environ, LATHE_ADMIN_PASSWORD=PASSWORD)
    log = open(tmp / "lathe.log", "w")
    srv = subprocess.Popen([str(lathe), "serve", "--listen", "127.0.0.1:0", "--port-file", str(tmp / "port"),
                            "--data-dir", str(tmp / "data"), "--io-threads", "2"], stdout=log, stderr=log, env=env)
    peer = None
    try:
        while not (tmp / "port").exists():
            time.sleep(0.05)
        url = f"http://127.0.0.1:{(tmp / 'port').read_text().strip()}"
        wait_http(url + "/healthz")
        token = requests.post(url + "/api/v1/auth/login", json={"username": "admin", "password": PASSWORD}).json()["token"]
        s = requests.Session()
        s.headers["Authorization"] = f"Bearer {token}"
        P = url + "/api/v1/projects/default"
        with open(args.csv, "rb") as f:
            r = s.post(P + "/datasets?name=bench", data=f, headers={"Content-Type": "text/csv"})
        r.raise_for_status()
        r = s.post(P + "/runs", json={"dataset": "bench", "target": args.label, "task": "binary",
                                      "params": {"n_estimators": 100, "max_depth": 6, "learning_rate": 0.1}})
        r.raise_for_status()
        run, job = r.json()["run"], r.json()["job"]
        while s.get(url + f"/api/v1/jobs/{job}").json()["state"] in ("queued", "running"):
            time.sleep(0.2)
        s.post(P + "/models/bench/versions", json={"run": run}).raise_for_status()
        s.post(P + "/deployments", json={"name": "bench", "model": "bench"}).raise_for_status()
        body = json.dumps({"instances": [instance]})
        check = s.post(P + "/deployments/bench/predict", data=body, headers={"Content-Type": "application/json"})
        check.raise_for_status()
        hdr = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        # Warm up, then measure.
        wrk(P + "/deployments/bench/predict", body, hdr, 2)
        predict = wrk(P + "/deployments/bench/predict", body, hdr, args.duration)
        noop = wrk(url + "/api/v1/ping", body, hdr, args.duration)
        srv.send_signal(signal.SIGTERM)
        srv.wait(30)

        port = 18000 + os.getpid() % 1000
        peer = subprocess.Popen(["/usr/bin/python3", str(HERE / "fastapi_peer.py"), args.csv, args.label, str(port)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_http(f"http://127.0.0.1:{port}/ping", timeout=300)
        cols = list(instance)
        peer_body = json.dumps({"dataframe_split": {"columns": cols, "data": [[instance[c] for c in cols]]}})
        ok = requests.post(f"http://127.0.0.1:{port}/invocations", data=peer_body)
        ok.raise_for_status()
        wrk(f"http://127.0.0.1:{port}/invocations", peer_body, {"Content-Type": "application/json"}, 2)
        fastapi = wrk(f"http://127.0.0.1:{port}/invocations", peer_body, {"Content-Type": "application/json"},
                      args.duration)
    finally:
        if srv.poll() is None:
            srv.kill()
        if peer is not None:
            peer.kill()
        log.close()

    result = {"benchmark": "predict", "lathe_predict": predict, "lathe_noop": noop, "fastapi_uvicorn": fastapi,
              "predict_vs_noop": round(predict["rps"] / noop["rps"], 3),
              "lathe_vs_fastapi": round(predict["rps"] / fastapi["rps"], 1)}
    print(json.dumps(result, indent=2))
    print(f"predict: {predict['rps']:.0f} req/s (p50 {predict['p50_ms']:.2f} ms, p99 {predict['p99_ms']:.2f} ms); "
          f"no-op: {noop['rps']:.0f} req/s; FastAPI: {fastapi['rps']:.0f} req/s "
          f"(p50 {fastapi['p50_ms']:.2f} ms, p99 {fastapi['p99_ms']:.2f} ms)")
    print(f"ratio predict/no-op = {result['predict_vs_noop']} (target >= 0.7); "
          f"lathe/FastAPI = {result['lathe_vs_fastapi']}x (target >= 20x)")


if __name__ == "__main__":
    sys.exit(main())
