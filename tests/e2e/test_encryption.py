"""Encryption at rest: blobs on disk are ciphertext, tampering is reported as problem+json, and the master key
rotates (API and CLI) while the server keeps serving; after a restart every blob and saved secret still reads.
"""
import http.server
import json
import os
import secrets
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import ADMIN_PASSWORD, LATHE_BIN, Client, Server, assert_problem, login
from datagen import churn_csv

P = "/api/v1/projects/default"
MAGIC = b"\x89LENC\r\n\x1a"
MARKER = "zq-marker-7731-plaintext"
INSTANCE = {"age": 30, "income": 52000.5, "plan": "basic", "signup": "2024-03-04", "visits": 2}


def marked_csv():
    # A string column whose values are unmistakable on disk (one per row, so the column is not tiny).
    lines = churn_csv(rows=400).splitlines()
    out = [lines[0] + ",note"] + [f"{line},{MARKER}-{i}" for i, line in enumerate(lines[1:])]
    return "\n".join(out) + "\n"


def blob_files(server):
    root = server.data_dir / "blobs"
    return sorted(p for kind in ("z", "r") for p in (root / kind).glob("*/*") if p.is_file())


class Api(http.server.BaseHTTPRequestHandler):
    """A CSV behind a required API key header: the saved connection's sealed secret."""

    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.headers.get("X-Api-Key") != "k-secret-42":
            self.send_response(401)
            self.end_headers()
            return
        body = churn_csv(rows=60).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/csv")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def api():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Api)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("enc")
    server = Server(tmp, extra_args=["--http-source-allow", "127.0.0.0/8"]).start()
    yield server, tmp
    server.stop()


@pytest.fixture(scope="module")
def client(env):
    return Client(env[0].url, login(env[0].url))


@pytest.fixture(scope="module")
def deployed(client, env, api):
    server, _ = env
    before = set(blob_files(server))
    r = client.post(f"{P}/datasets?name=marked", data=marked_csv().encode())
    assert r.status_code == 201, r.text
    dataset_blobs = [p for p in blob_files(server) if p not in before and "/r/" in str(p)]
    assert len(dataset_blobs) == 1, dataset_blobs
    run = client.train({"dataset": "marked", "target": "churned", "task": "binary",
                        "params": {"n_estimators": 20, "max_depth": 3}})
    assert run["state"] == "succeeded", run
    assert client.post(f"{P}/models/churn/versions", json={"run": run["id"]}).status_code in (200, 201)
    r = client.post(f"{P}/deployments", json={"name": "churn", "model": "churn", "version": 1})
    assert r.status_code in (200, 201), r.text
    r = client.request("PUT", f"{P}/connections/api", json={
        "kind": "http", "url": f"{api}/data.csv", "headers": {"X-Api-Key": "k-secret-42"}, "format": "csv"})
    assert r.status_code == 200, r.text
    return dataset_blobs[0]


def predict(c):
    return c.post(f"{P}/deployments/churn/predict", json={"instances": [INSTANCE]})


def test_blobs_on_disk_are_ciphertext_and_everything_reads(client, env, deployed):
    server, _ = env
    files = blob_files(server)
    assert files
    for f in files:
        data = f.read_bytes()
        assert data.startswith(MAGIC), f
        assert MARKER.encode() not in data, f
    key_file = server.data_dir / "master.key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert predict(client).status_code == 200
    rows = client.get(f"{P}/datasets/marked/versions/1/rows?limit=5")
    assert rows.status_code == 200 and MARKER in rows.text
    keys = client.get("/api/v1/admin/keys").json()
    assert keys["key_source"] == "file" and len(keys["key_ids"]) == 1
    assert keys["blobs_by_key_id"] == {keys["active_key_id"]: len(files)}


def test_a_flipped_byte_is_a_clear_problem_never_garbage(client, deployed):
    path = deployed
    good = path.read_bytes()
    os.chmod(path, 0o600)
    try:
        for offset in (20, len(good) // 2, len(good) - 1):  # header, body, last tag
            bad = bytearray(good)
            bad[offset] ^= 0x01
            path.write_bytes(bytes(bad))
            r = client.get(f"{P}/datasets/marked/versions/1/rows?limit=5")
            body = assert_problem(r, 500)
            assert "authentication failed" in body["detail"] or "unknown master key id" in body["detail"], body
            assert path.name in body["detail"], body
            assert MARKER not in r.text
    finally:
        path.write_bytes(good)
    assert client.get(f"{P}/datasets/marked/versions/1/rows?limit=5").status_code == 200


def test_rotate_via_api_while_serving_then_via_cli(client, env, deployed, tmp_path):
    server, _ = env
    old = client.get("/api/v1/admin/keys").json()["active_key_id"]
    stop = threading.Event()
    codes = []
    serving = Client(server.url, client.s.headers["Authorization"].split()[1])

    def hammer():
        while not stop.is_set():
            codes.append(predict(serving).status_code)

    t = threading.Thread(target=hammer)
    t.start()
    try:
        r = client.post("/api/v1/admin/rotate-key", json={})
        assert r.status_code == 202, r.text
        new = r.json()["key_id"]
        assert new != old and r.json()["previous_key_id"] == old
        assert "operator_action" not in r.json()
        job = client.wait_job(r.json()["job"])
        assert job["state"] == "succeeded", job
        result = job["result"]
        assert result["rewrapped"] >= 3 and result["failed"] == 0, result
        assert result["secrets_resealed"] >= 1 and result["retired_key_ids"] == [old], result
        # The CLI rotates again, waits, and prints the new key id.
        cli_env = {k: v for k, v in os.environ.items()
                   if k not in ("LATHE_TOKEN", "LATHE_PASSWORD", "XDG_CONFIG_HOME", "LATHE_URL")}
        cli_env.update(HOME=str(tmp_path), LATHE_URL=server.url)
        p = subprocess.run([LATHE_BIN, "login", "--password-stdin"], input=ADMIN_PASSWORD + "\n", text=True,
                           capture_output=True, env=cli_env, timeout=60)
        assert p.returncode == 0, p.stderr
        p = subprocess.run([LATHE_BIN, "admin", "rotate-key", "--wait"], text=True, capture_output=True,
                           env=cli_env, timeout=120)
        assert p.returncode == 0, p.stderr
        cli_key = p.stdout.strip()
        assert len(cli_key) == 8 and cli_key != new, p.stdout
        assert "retired keys" in p.stderr, p.stderr
    finally:
        stop.set()
        t.join(30)
    assert codes and set(codes) == {200}, {c: codes.count(c) for c in set(codes)}
    keys = client.get("/api/v1/admin/keys").json()
    assert keys["key_ids"] == [cli_key] and keys["active_key_id"] == cli_key
    assert set(keys["blobs_by_key_id"]) == {cli_key}
    assert (server.data_dir / "master.key").read_text().strip() != ""
    assert not list((server.data_dir / "keys").glob("*.key"))
    # The saved connection's secret was re-sealed and still opens.
    r = client.post(f"{P}/datasets/fetched/imports?wait=true", json={"source": {"connection": "api"}})
    assert r.status_code == 201, r.text


def test_after_rotation_a_restart_reads_everything(env, deployed):
    server, _ = env
    assert server.stop(signal.SIGTERM) == 0
    server.start()
    c = Client(server.url, login(server.url))
    assert predict(c).status_code == 200
    assert MARKER in c.get(f"{P}/datasets/marked/versions/1/rows?limit=5").text
    r = c.post(f"{P}/datasets/fetched/imports?wait=true", json={"source": {"connection": "api"}})
    assert r.status_code == 201, r.text
    assert "does not hold" not in server.log_text()


def test_environment_keys_rotation_tells_the_operator_what_to_change(tmp_path):
    k1, k2 = secrets.token_hex(32), secrets.token_hex(32)
    s = Server(tmp_path, env={"LATHE_MASTER_KEY": k1}).start()
    try:
        c = Client(s.url, login(s.url))
        assert c.post(f"{P}/datasets?name=d", data=churn_csv(rows=50).encode()).status_code == 201
        assert not (s.data_dir / "master.key").exists()
        assert_problem(c.post("/api/v1/admin/rotate-key", json={}), 400, "key_hex", "LATHE_MASTER_KEY")
        assert_problem(c.post("/api/v1/admin/rotate-key", json={"key_hex": "abc"}), 400, "key_hex")
        r = c.post("/api/v1/admin/rotate-key", json={"key_hex": k2})
        assert r.status_code == 202, r.text
        assert "LATHE_MASTER_KEY" in r.json()["operator_action"]
        assert k2 not in r.text
        assert c.wait_job(r.json()["job"])["state"] == "succeeded"
        assert s.stop() == 0
        # Started again with only the old key: refused, saying which key is missing.
        s.env["LATHE_MASTER_KEY"] = k1
        with pytest.raises(RuntimeError, match="LATHE_MASTER_KEY"):
            s.start()
        s.env["LATHE_MASTER_KEY"] = k2
        s.start()
        c = Client(s.url, login(s.url))
        assert c.get(f"{P}/datasets/d/versions/1/rows?limit=2").status_code == 200
    finally:
        s.stop()


def test_blobs_from_before_encryption_still_read_and_rotation_encrypts_them(tmp_path):
    s = Server(tmp_path, extra_args=["--encrypt-blobs=false"]).start()
    try:
        c = Client(s.url, login(s.url))
        assert c.post(f"{P}/datasets?name=old", data=churn_csv(rows=50).encode()).status_code == 201
        assert not any(f.read_bytes().startswith(MAGIC) for f in blob_files(s))
        s.stop()
        s.extra_args = []
        s.start()
        c = Client(s.url, login(s.url))
        assert c.get(f"{P}/datasets/old/versions/1/rows?limit=2").status_code == 200
        r = c.post("/api/v1/admin/rotate-key", json={"keep_old": True})
        job = c.wait_job(r.json()["job"])
        assert job["state"] == "succeeded" and job["result"]["encrypted"] >= 1, job
        assert all(f.read_bytes().startswith(MAGIC) for f in blob_files(s))
        assert len(c.get("/api/v1/admin/keys").json()["key_ids"]) == 2  # keep_old
        assert c.get(f"{P}/datasets/old/versions/1/rows?limit=2").status_code == 200
    finally:
        s.stop()
