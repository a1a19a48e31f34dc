"""Imports from real external sources through the HTTP API: a throwaway PostgreSQL 15 (tests/tools/pgtmp), a
SQLite file under --sqlite-dir, and a local HTTP server with paging and a required header. Secrets are never
returned or logged."""
import http.server
import json
import os
import sqlite3
import subprocess
import threading
from pathlib import Path

import pytest

from conftest import Client, Server, assert_problem, login

ROOT = Path(__file__).resolve().parents[2]
P = "/api/v1/projects/default"
PG_PASSWORD = "lathe-pw-secret"


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sources")
    sqlite_dir = tmp / "sqlite"
    sqlite_dir.mkdir()
    db = sqlite3.connect(sqlite_dir / "shop.db")
    db.executescript("CREATE TABLE orders (id INTEGER, code TEXT, amount REAL);"
                     "INSERT INTO orders VALUES (1, '007', 9.5), (2, '010', NULL), (3, 'x', 1.25);")
    db.commit()
    db.close()
    (tmp / "outside.db").write_bytes((sqlite_dir / "shop.db").read_bytes())
    # The local test API is on loopback, which HTTP sources may not reach unless the server allows it.
    server = Server(tmp, extra_args=["--sqlite-dir", str(sqlite_dir), "--http-source-allow", "127.0.0.0/8"]).start()
    yield server, tmp
    server.stop()


@pytest.fixture(scope="module")
def client(env):
    server, _ = env
    return Client(server.url, login(server.url))


@pytest.fixture(scope="module")
def pg():
    # Directly under /tmp: pgtmp hands the directory to user postgres, which must be able to reach it.
    d = Path(f"/tmp/lathe-e2e-pg-{os.getpid()}")
    r = subprocess.run([str(ROOT / "tests/tools/pgtmp"), "start", str(d)], capture_output=True, text=True)
    if r.returncode == 77:
        pytest.skip(r.stderr.strip())
    assert r.returncode == 0, r.stderr
    port = int(r.stdout.strip())
    sql = ("CREATE TABLE people (id int4, zip text, score numeric(6,2), active bool, born date, seen timestamptz, "
           "name text);"
           "INSERT INTO people VALUES (1, '01234', 3.5, true, '1990-01-02', '2024-01-01 10:00:00+00', 'Zoë'),"
           "(2, '98765', NULL, false, NULL, NULL, NULL), (3, '00001', -1.25, true, '2000-02-29', "
           "'2024-02-29 23:59:59+00', '日本');")
    subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", str(port), "-U",
                    "lathe_test", "-d", "lathe_test", "-c", sql], check=True, capture_output=True)
    yield port
    subprocess.run([str(ROOT / "tests/tools/pgtmp"), "stop", str(d)], capture_output=True)


def test_postgres_connection_import_keeps_db_types_and_never_shows_the_password(client, env, pg):
    server, _ = env
    dsn = f"host=127.0.0.1 port={pg} dbname=lathe_test user=lathe_pw"
    r = client.request("PUT", f"{P}/connections/pg", json={"kind": "postgres", "dsn": dsn, "password": PG_PASSWORD})
    assert r.status_code == 200, r.text
    assert r.json()["has_password"] is True
    listing = client.get(f"{P}/connections")
    shown = client.get(f"{P}/connections/pg")
    r = client.post(f"{P}/datasets/people/imports",
                    json={"source": {"connection": "pg", "query": "SELECT * FROM people ORDER BY id"}})
    assert r.status_code == 202, r.text
    job = client.wait_job(r.json()["job"])
    assert job["state"] == "succeeded", job
    v = client.get(f"{P}/datasets/people/versions/1").json()
    types = {c["name"]: c["type"] for c in v["columns"]}
    assert types == {"id": "integer", "zip": "string", "score": "float", "active": "boolean", "born": "datetime",
                     "seen": "datetime", "name": "string"}
    rows = client.get(f"{P}/datasets/people/versions/1/rows").json()["rows"]
    assert rows[0]["zip"] == "01234" and rows[2]["name"] == "日本" and rows[1]["score"] is None
    assert v["source"]["connection"] == "pg"
    for text in (listing.text, shown.text, json.dumps(job), json.dumps(v), server.log_text()):
        assert PG_PASSWORD not in text


def test_inline_postgres_source_is_sealed_in_the_job(client, pg):
    source = {"kind": "postgres", "dsn": f"host=127.0.0.1 port={pg} dbname=lathe_test user=lathe_pw",
              "password": PG_PASSWORD, "query": "SELECT id, zip FROM people"}
    r = client.post(f"{P}/datasets/inline/imports?wait=true", json={"source": source})
    assert r.status_code == 201, r.text
    job = client.get(f"/api/v1/jobs/{r.json()['job']}").json()
    assert PG_PASSWORD not in json.dumps(job)
    assert r.json()["rows"] == 3


def test_postgres_one_column_nulls_are_rows_not_blank_lines(client, pg):
    # COPY writes a NULL as an empty field, so a one-column NULL row is a blank line a CSV reader would skip.
    source = {"kind": "postgres", "dsn": f"host=127.0.0.1 port={pg} dbname=lathe_test user=lathe_pw",
              "password": PG_PASSWORD, "query": "SELECT score FROM people ORDER BY id"}
    r = client.post(f"{P}/datasets/scores/imports?wait=true", json={"source": source})
    assert r.status_code == 201, r.text
    assert r.json()["rows"] == 3
    rows = client.get(f"{P}/datasets/scores/versions/1/rows").json()["rows"]
    assert [row["score"] for row in rows] == [3.5, None, -1.25]


def test_postgres_errors_are_4xx_and_write_nothing(client, pg):
    base = {"kind": "postgres", "dsn": f"host=127.0.0.1 port={pg} dbname=lathe_test user=lathe_pw"}
    r = client.post(f"{P}/datasets/broken/imports?wait=true",
                    json={"source": {**base, "password": "wrong", "query": "SELECT 1"}})
    assert_problem(r, 400, "password")
    r = client.post(f"{P}/datasets/broken/imports?wait=true",
                    json={"source": {**base, "password": PG_PASSWORD, "query": "SELEC id FROM people"}})
    body = assert_problem(r, 400, "syntax")
    assert any("position" in e for e in body.get("errors", [])), body
    assert_problem(client.post(f"{P}/datasets/broken/imports", json={"source": {"connection": "nope", "query": "x"}}),
                   404, "nope")
    assert_problem(client.post(f"{P}/datasets/broken/imports", json={"source": {**base, "password": "x"}}),
                   400, "query")
    assert_problem(client.post(f"{P}/datasets/broken/imports",
                               json={"source": {**base, "dsn": base["dsn"] + " password=x", "query": "SELECT 1"}}),
                   400, "password")
    assert client.get(f"{P}/datasets/broken").status_code == 404


def test_sqlite_files_only_under_the_sqlite_dir(client, env):
    r = client.post(f"{P}/datasets/orders/imports?wait=true",
                    json={"source": {"kind": "sqlite", "path": "shop.db", "query": "SELECT * FROM orders"}})
    assert r.status_code == 201, r.text
    assert r.json()["rows"] == 3
    rows = client.get(f"{P}/datasets/orders/versions/1/rows").json()["rows"]
    assert rows[0]["code"] == "007"
    r = client.post(f"{P}/datasets/orders/imports",
                    json={"source": {"kind": "sqlite", "path": "../outside.db", "query": "SELECT 1"}})
    assert r.status_code in (400, 403), r.text
    assert r.headers["Content-Type"].startswith("application/problem+json")


class Api(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.headers.get("X-Api-Key") != "k-123":
            self.send_response(401)
            self.end_headers()
            return
        if self.path.startswith("/items"):
            page = int(self.path.split("page=")[1]) if "page=" in self.path else 1
            items = [{"id": page * 10 + i, "name": f"p{page}-{i}", "tags": {"x": i}} for i in range(2)] if page <= 3 else []
            body = json.dumps({"data": items}).encode()
            ctype = "application/json"
        elif self.path.startswith("/broken.csv"):
            body, ctype = b"a,b\n1,2\n3\n4,5\n", "text/csv"
        else:
            self.send_response(500)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def api():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Api)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()


def test_http_pages_with_a_secret_header_from_a_saved_connection(client, env, api):
    server, _ = env
    r = client.request("PUT", f"{P}/connections/api", json={
        "kind": "http", "url": f"{api}/items", "headers": {"X-Api-Key": "k-123"}, "records_pointer": "/data",
        "pagination": {"kind": "page", "page_param": "page", "max_pages": 10}})
    assert r.status_code == 200, r.text
    assert r.json()["header_names"] == ["X-Api-Key"] and "k-123" not in r.text
    r = client.post(f"{P}/datasets/items/imports?wait=true", json={"source": {"connection": "api"}})
    assert r.status_code == 201, r.text
    v = r.json()
    assert v["rows"] == 6
    assert [c["name"] for c in v["columns"]] == ["id", "name", "tags.x"]
    assert "k-123" not in json.dumps(v) and "k-123" not in server.log_text()


def test_http_errors_and_bad_row_policy_on_fetched_data(client, api):
    r = client.post(f"{P}/datasets/h/imports?wait=true", json={"source": {"kind": "http", "url": f"{api}/items"}})
    assert_problem(r, 400, "401")
    r = client.post(f"{P}/datasets/h/imports?wait=true",
                    json={"source": {"kind": "http", "url": f"{api}/fail", "headers": {"X-Api-Key": "k-123"}}})
    assert r.status_code in (502, 503) or r.status_code == 400, r.text
    assert_problem(client.post(f"{P}/datasets/h/imports", json={"source": {"kind": "http", "url": "file:///etc/passwd"}}),
                   400, "http")
    r = client.post(f"{P}/datasets/h/imports?wait=true",
                    json={"source": {"kind": "http", "url": f"{api}/broken.csv", "headers": {"X-Api-Key": "k-123"}},
                          "import": {"bad_rows": "quarantine"}})
    assert r.status_code == 201, r.text
    assert r.json()["rows"] == 2 and r.json()["bad_rows"] == 1
    q = client.get(f"{P}/datasets/h/versions/{r.json()['version']}/quarantine").text
    assert json.loads(q.splitlines()[0])["line"] == 3


def test_http_sources_reach_only_public_or_allowed_addresses(client, api, tmp_path_factory):
    # This server allows 127.0.0.0/8 only: metadata services, private ranges and IPv6 loopback stay refused.
    for url, why in [("http://169.254.169.254/latest/meta-data/", "link-local"),
                     ("http://10.255.255.1/x.csv", "private"),
                     (api.replace("127.0.0.1", "[::1]") + "/items", "loopback")]:
        r = client.post(f"{P}/datasets/ssrf/imports?wait=true", json={"source": {"kind": "http", "url": url}})
        assert_problem(r, 403, why, "--http-source-allow")
    # A server with the default policy refuses loopback too, and nothing is imported.
    server = Server(tmp_path_factory.mktemp("ssrf")).start()
    try:
        c = Client(server.url, login(server.url))
        r = c.post(f"{P}/datasets/ssrf/imports?wait=true",
                   json={"source": {"kind": "http", "url": f"{api}/items", "headers": {"X-Api-Key": "k-123"}}})
        body = assert_problem(r, 403, "127.0.0.1, a loopback address")
        assert "k-123" not in json.dumps(body)
        assert c.get(f"{P}/datasets/ssrf").status_code == 404
    finally:
        server.stop()
