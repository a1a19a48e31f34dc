"""End-to-end fixtures: start the real `lathe` binary on port 0 with a temporary data dir, over real HTTP.

LATHE_BIN names the binary (default build/lathe). Each test module gets its own server (module scope), so
modules can run in parallel without sharing state; tests inside a module share the server and its data.
"""
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
LATHE_BIN = os.environ.get("LATHE_BIN", str(ROOT / "build" / "lathe"))
ADMIN_PASSWORD = "e2e-admin-password-123"


class Server:
    def __init__(self, tmp: Path, extra_args=(), env=None):
        self.tmp = tmp
        self.data_dir = tmp / "data"
        self.port_file = tmp / "port"
        self.log_path = tmp / "server.log"
        self.extra_args = list(extra_args)
        self.env = dict(os.environ, LATHE_ADMIN_PASSWORD=ADMIN_PASSWORD, **(env or {}))
        self.proc = None
        self.url = None

    def start(self):
        if self.port_file.exists():
            self.port_file.unlink()
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [LATHE_BIN, "serve", "--listen", "127.0.0.1:0", "--port-file", str(self.port_file),
             "--data-dir", str(self.data_dir), *self.extra_args],
            stdout=self.log, stderr=subprocess.STDOUT, env=self.env)
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"lathe exited with {self.proc.returncode}:\n{self.log_text()}")
            if self.port_file.exists() and self.port_file.read_text().strip():
                self.url = f"{self.scheme()}://127.0.0.1:{int(self.port_file.read_text())}"
                try:
                    if requests.get(self.url + "/readyz", timeout=2, verify=self.verify()).status_code == 200:
                        return self
                except requests.ConnectionError:
                    pass
            time.sleep(0.05)
        raise RuntimeError("lathe did not become ready:\n" + self.log_text())

    def scheme(self):
        return "https" if "--tls-self-signed" in self.extra_args else "http"

    def verify(self):
        """What a client trusts: the self-signed certificate the server made, or the system CAs."""
        if self.scheme() == "https":
            return str(self.data_dir / "tls" / "self-signed.crt")
        return True

    def stop(self, sig=signal.SIGTERM, timeout=30):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            self.log.close()
        return self.proc.returncode if self.proc else None

    def log_text(self):
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


class Client:
    """A thin authenticated HTTP client: c.get('/api/v1/...'), c.post(path, json=... | data=...)."""

    def __init__(self, url, token=None):
        self.url = url
        self.s = requests.Session()
        if token:
            self.s.headers["Authorization"] = f"Bearer {token}"

    def request(self, method, path, **kw):
        kw.setdefault("timeout", 60)
        return self.s.request(method, self.url + path, **kw)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, **kw):
        return self.request("POST", path, **kw)

    def patch(self, path, **kw):
        return self.request("PATCH", path, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    def train(self, body, project="default"):
        """POST a run, wait for its job to succeed, and return the finished run."""
        base = f"/api/v1/projects/{project}"
        r = self.post(f"{base}/runs", json=body)
        assert r.status_code == 202, r.text
        job = self.wait_job(r.json()["job"])
        assert job["state"] == "succeeded", job
        return self.get(f"{base}/runs/{r.json()['run']}").json()

    def wait_job(self, job_id, timeout=120):
        deadline = time.time() + timeout
        while time.time() < deadline:
            r = self.get(f"/api/v1/jobs/{job_id}")
            assert r.status_code == 200, r.text
            job = r.json()
            if job["state"] in ("succeeded", "failed", "cancelled"):
                return job
            time.sleep(0.1)
        raise TimeoutError(f"job {job_id} did not finish")


def login(url, username="admin", password=ADMIN_PASSWORD):
    r = requests.post(url + "/api/v1/auth/login", json={"username": username, "password": password}, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()["token"]


def assert_problem(r, status, *needles):
    """Checks an RFC 9457 problem+json error response and that its detail mentions each needle."""
    assert r.status_code == status, f"expected {status}, got {r.status_code}: {r.text}"
    assert r.headers["Content-Type"].startswith("application/problem+json"), r.headers
    body = r.json()
    for key in ("type", "title", "status", "detail", "request_id"):
        assert key in body, f"problem lacks {key}: {body}"
    assert body["status"] == status
    text = json.dumps(body).lower()
    for n in needles:
        assert n.lower() in text, f"{n!r} not in {body}"
    return body


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("lathe")).start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def client(server):
    return Client(server.url, login(server.url))


@pytest.fixture(scope="module")
def anon(server):
    return Client(server.url)
