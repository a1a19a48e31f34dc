"""Predict throughput, all measured in this run on this machine (wrk on loopback, sharing the cores):
  a. 1 row per request, 32 connections: lathe's predict route vs lathe's own authenticated no-op route
     (target >= 0.7), and vs the same model served by FastAPI + uvicorn, MLflow-style (target >= 20x);
  c. p99 latency at half of (a)'s maximum throughput, open loop (lathe_loadgen: requests on a fixed schedule,
     latency from the scheduled time; target <= 5 ms); with --soak SECONDS, the same load for that long while
     the server's RSS is sampled every 10 s (target: growth under 5 % after the first 30 s, zero errors);
  b. 1000 rows per request, 4 connections: rows/s vs the raw XGBoost C API (in-place prediction, one thread
     per call, every core, no HTTP, no JSON) on the same model file and the same rows (lathe_raw_predict_bench;
     target >= 0.8). The deployment logs 1 % of these requests (log.sample_rate 0.01), as a high-volume
     deployment would be configured.

    /usr/bin/python3 bench/bench_predict.py BUILD_DIR TRAIN.csv [--duration 10] [--batch-rows 1000] [--soak 300]
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


def wrk(url, body, headers, duration, connections=32, timeout="2s"):
    lua = "wrk.method = 'POST'\nwrk.body = [==[" + body + "]==]\n"
    for k, v in headers.items():
        lua += f"wrk.headers['{k}'] = '{v}'\n"
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(lua)
        script = f.name
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{duration}s", f"--timeout={timeout}", "--latency",
                          "-s", script, url],
                         capture_output=True, text=True, check=True).stdout
    os.unlink(script)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))

    def pct(p):
        m = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)", out)
        v, unit = float(m.group(1)), m.group(2)
        return v / 1000 if unit == "us" else v * 1000 if unit == "s" else v

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": rps, "p50_ms": pct(50), "p99_ms": pct(99), "non2xx": int(errors.group(1)) if errors else 0}


def rss_mb(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def loadgen(build, port, path, body, headers, rate, duration, connections=32):
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        f.write(body)
        body_file = f.name
    cmd = [str(Path(build).resolve() / "bench" / "lathe_loadgen"), "--port", str(port), "--path", path,
           "--body-file", body_file, "--rate", str(rate), "--duration", str(duration),
           "--connections", str(connections)]
    for k, v in headers.items():
        cmd += ["--header", f"{k}: {v}"]
    return cmd, body_file


def run_loadgen(*args, **kw):
    cmd, body_file = loadgen(*args, **kw)
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    os.unlink(body_file)
    return json.loads(out)


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
    ap.add_argument("--batch-rows", type=int, default=1000)
    ap.add_argument("--soak", type=int, default=0, help="seconds of the half-load soak (0 = none)")
    args = ap.parse_args()
    lathe = Path(args.build).resolve() / "lathe"

    with open(args.csv) as f:
        reader = csv.reader(f)
        header = next(reader)
        instance = typed_row(header, next(reader), args.label)
        batch = [typed_row(header, next(reader), args.label) for _ in range(args.batch_rows)]

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
        port_num = int((tmp / "port").read_text().strip())
        predict_path = "/api/v1/projects/default/deployments/bench/predict"
        half = run_loadgen(args.build, port_num, predict_path, body, hdr, round(predict["rps"] / 2), args.duration)
        soak = None
        if args.soak > 0:
            cmd, body_file = loadgen(args.build, port_num, predict_path, body, hdr, round(predict["rps"] / 2),
                                     args.soak)
            gen = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
            samples = []
            t0 = time.time()
            while gen.poll() is None:
                time.sleep(10)
                samples.append((round(time.time() - t0), rss_mb(srv.pid)))
            soak = json.loads(gen.stdout.read())
            os.unlink(body_file)
            settled = [mb for t, mb in samples if t >= 30] or [mb for _, mb in samples]
            soak["rss_mb"] = samples
            soak["rss_growth_pct"] = round(100 * (settled[-1] - settled[0]) / settled[0], 2)
        # The same single-row load with micro-batching on (for information: no target).
        s.patch(P + "/deployments/bench", json={"batching": {"max_batch_rows": 32, "max_delay_us": 200}}).raise_for_status()
        batching = wrk(P + "/deployments/bench/predict", body, hdr, args.duration)
        batching["mean_batch_rows"] = s.get(P + "/deployments/bench/stats").json()["routes"][0]["batching"]["mean_batch_rows"]
        s.patch(P + "/deployments/bench", json={"batching": None}).raise_for_status()

        # b. 1000-row requests against the raw C API on the same model file and rows.
        s.patch(P + "/deployments/bench", json={"log": {"sample_rate": 0.01}}).raise_for_status()
        batch_body = json.dumps({"instances": batch})
        s.post(P + "/deployments/bench/predict", data=batch_body,
               headers={"Content-Type": "application/json"}).raise_for_status()
        wrk(P + "/deployments/bench/predict", batch_body, hdr, 2, connections=4, timeout="10s")
        batched = wrk(P + "/deployments/bench/predict", batch_body, hdr, args.duration, connections=4, timeout="10s")
        batched["rows_per_s"] = batched["rps"] * len(batch)
        bundle = s.get(P + "/models/bench/versions/1/bundle")
        bundle.raise_for_status()
        (tmp / "model.lathe").write_bytes(bundle.content)
        (tmp / "body.json").write_text(batch_body)
        srv.send_signal(signal.SIGTERM)
        srv.wait(30)
        raw = json.loads(subprocess.run([str(Path(args.build).resolve() / "bench" / "lathe_raw_predict_bench"),
                                         str(tmp / "model.lathe"), str(tmp / "body.json"), str(min(args.duration, 5))],
                                        capture_output=True, text=True, check=True).stdout)

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
              "lathe_batch": batched, "raw_c_api": raw, "lathe_predict_microbatching": batching,
              "half_load_open_loop": half, "soak": soak,
              "predict_vs_noop": round(predict["rps"] / noop["rps"], 3),
              "lathe_vs_fastapi": round(predict["rps"] / fastapi["rps"], 1),
              "batch_vs_raw": round(batched["rows_per_s"] / raw["raw_rows_per_s"], 3)}
    print(json.dumps(result, indent=2))
    print(f"predict: {predict['rps']:.0f} req/s (p50 {predict['p50_ms']:.2f} ms, p99 {predict['p99_ms']:.2f} ms); "
          f"no-op: {noop['rps']:.0f} req/s; FastAPI: {fastapi['rps']:.0f} req/s "
          f"(p50 {fastapi['p50_ms']:.2f} ms, p99 {fastapi['p99_ms']:.2f} ms)")
    print(f"ratio predict/no-op = {result['predict_vs_noop']} (target >= 0.7); "
          f"lathe/FastAPI = {result['lathe_vs_fastapi']}x (target >= 20x)")
    print(f"open loop at half of max throughput ({half['rate']:.0f} req/s): p50 {half['p50_ms']:.2f} ms, "
          f"p99 {half['p99_ms']:.2f} ms (target <= 5 ms), p99.9 {half['p999_ms']:.2f} ms, "
          f"{half['errors'] + half['non2xx']} errors")
    if soak:
        print(f"soak {args.soak} s at {soak['rate']:.0f} req/s: {soak['completed']} requests, "
              f"{soak['errors'] + soak['non2xx']} errors, p99 {soak['p99_ms']:.2f} ms, RSS "
              f"{soak['rss_mb'][0][1]:.0f} -> {soak['rss_mb'][-1][1]:.0f} MB, growth after 30 s "
              f"{soak['rss_growth_pct']} % (target < 5 %)")
    print(f"single-row predict with micro-batching (32 rows, 200 us): {batching['rps']:.0f} req/s "
          f"(p50 {batching['p50_ms']:.2f} ms, p99 {batching['p99_ms']:.2f} ms, mean batch "
          f"{batching['mean_batch_rows']:.1f} rows)")
    print(f"{len(batch)}-row requests: {batched['rows_per_s']:.0f} rows/s (p50 {batched['p50_ms']:.2f} ms, "
          f"p99 {batched['p99_ms']:.2f} ms); raw C API {raw['raw_rows_per_s']:.0f} rows/s "
          f"(lathe's evaluator alone {raw['evaluator_rows_per_s']:.0f}); "
          f"ratio = {result['batch_vs_raw']} (target >= 0.8)")


if __name__ == "__main__":
    sys.exit(main())
