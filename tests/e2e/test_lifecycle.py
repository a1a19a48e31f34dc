"""Process lifecycle: graceful shutdown, restart with state kept, recovery of jobs killed mid-run,
refusing a newer schema, and configuration precedence."""
import signal
import sqlite3
import subprocess
import threading
import time

from conftest import LATHE_BIN, Client, Server, login
from datagen import churn_csv

P = "/api/v1/projects/default"


def test_sigterm_exits_zero_and_state_survives_restart(tmp_path):
    s = Server(tmp_path).start()
    c = Client(s.url, login(s.url))
    assert c.post(f"{P}/datasets?name=keep", data=churn_csv(rows=50).encode()).status_code == 201
    assert s.stop(signal.SIGTERM) == 0
    assert "shutting down" in s.log_text()
    s2 = Server(tmp_path).start()
    try:
        c2 = Client(s2.url, login(s2.url))
        assert c2.get(f"{P}/datasets/keep").json()["versions"][0]["rows"] == 50
    finally:
        assert s2.stop(signal.SIGINT) == 0


def test_inflight_upload_finishes_during_shutdown(tmp_path):
    s = Server(tmp_path).start()
    c = Client(s.url, login(s.url))
    body = churn_csv(rows=200000).encode()
    result = {}

    def do_upload():
        result["r"] = c.post(f"{P}/datasets?name=inflight", data=body)

    t = threading.Thread(target=do_upload)
    t.start()
    time.sleep(0.3)
    s.proc.send_signal(signal.SIGTERM)
    t.join(60)
    assert s.proc.wait(60) == 0
    # Either it was fully accepted before the stop, or it completed during the drain.
    assert result["r"].status_code == 201, result["r"].text


def test_job_killed_mid_run_is_failed_at_restart(tmp_path):
    s = Server(tmp_path).start()
    c = Client(s.url, login(s.url))
    assert c.post(f"{P}/datasets?name=big", data=churn_csv(rows=3000).encode()).status_code == 201
    r = c.post(f"{P}/runs", json={"dataset": "big", "target": "churned", "task": "binary",
                                  "params": {"n_estimators": 10000, "max_depth": 10, "learning_rate": 0.001}})
    assert r.status_code == 202, r.text
    job = r.json()["job"]
    deadline = time.time() + 30
    while c.get(f"/api/v1/jobs/{job}").json()["state"] != "running" and time.time() < deadline:
        time.sleep(0.05)
    s.stop(signal.SIGKILL)
    s2 = Server(tmp_path).start()
    try:
        c2 = Client(s2.url, login(s2.url))
        j = c2.get(f"/api/v1/jobs/{job}").json()
        assert j["state"] == "failed" and "interrupted" in j["error"], j
        assert c2.get(f"{P}/runs/{r.json()['run']}").json()["state"] == "failed"
    finally:
        s2.stop()


def test_refuses_newer_schema(tmp_path):
    s = Server(tmp_path).start()
    s.stop()
    db = sqlite3.connect(tmp_path / "data" / "lathe.db")
    db.execute("INSERT INTO schema_version VALUES (9999, 0)")
    db.commit()
    db.close()
    p = subprocess.run([LATHE_BIN, "serve", "--listen", "127.0.0.1:0", "--data-dir", str(tmp_path / "data")],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode != 0
    assert "newer" in p.stderr


def test_help_lists_every_knob_and_flags_beat_env_beat_file(tmp_path):
    out = subprocess.run([LATHE_BIN, "serve", "--help"], capture_output=True, text=True, timeout=10).stdout
    for knob in ("--listen", "--port-file", "--data-dir", "--io-threads", "--workers", "--max-body-bytes",
                 "--max-header-bytes", "--max-json-depth", "--header-read-timeout-ms", "--request-timeout-ms"):
        assert knob in out
    (tmp_path / "lathe.toml").write_text('max_json_depth = 3\nworkers = 1\n')
    # File says depth 3; the environment raises it to 5; a flag would win over both.
    s = Server(tmp_path, ["--config", str(tmp_path / "lathe.toml")], env={"LATHE_MAX_JSON_DEPTH": "5"}).start()
    try:
        c = Client(s.url, login(s.url))
        ok = c.post(f"{P}/runs", data='{"a":{"b":{"c":{}}}}', headers={"Content-Type": "application/json"})
        assert "nested" not in ok.text
        deep = c.post(f"{P}/runs", data='{"a":{"b":{"c":{"d":{"e":{}}}}}}', headers={"Content-Type": "application/json"})
        assert deep.status_code == 400 and "nested" in deep.text
    finally:
        s.stop()
    bad = subprocess.run([LATHE_BIN, "serve", "--no-such-flag", "1"], capture_output=True, text=True, timeout=10)
    assert bad.returncode == 2 and "unknown flag" in bad.stderr


def test_generated_admin_password_is_logged_once_and_works(tmp_path):
    import json as _json
    import os
    env = {k: v for k, v in os.environ.items() if k != "LATHE_ADMIN_PASSWORD"}
    s = Server(tmp_path)
    s.env = env
    s.start()
    try:
        lines = [_json.loads(l) for l in s.log_text().splitlines() if l.startswith("{")]
        shown = [l for l in lines if "password" in l]
        assert len(shown) == 1, shown
        password = shown[0]["password"]
        assert len(password) >= 16
        assert login(s.url, password=password)
    finally:
        s.stop()
    s.start()  # restart: the password is not shown again
    try:
        lines = [_json.loads(l) for l in s.log_text().splitlines() if l.startswith("{")]
        assert len([l for l in lines if "password" in l]) == 1
    finally:
        s.stop()
