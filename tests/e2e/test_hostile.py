"""A hostile-input sweep over real HTTP: what an attacker would send through every string a user controls
(names, filters, expressions, SQL), oversized and malformed bodies, slow clients, password guessing, forged
credentials, injected headers and guessed ids from another project. Each is refused with a 4xx
problem+json (or, where the input is harmless data, kept verbatim and returned as JSON), nothing stored
changes, no file appears outside the data directory, and the server keeps serving."""
import hashlib
import json
import os
import re
import select
import signal
import socket
import sqlite3
import time
from urllib.parse import quote

import pytest
import requests

from conftest import ADMIN_PASSWORD, Client, Server, assert_problem, login
from datagen import churn_csv

P = "/api/v1/projects/default"
PASSWORD = "long-enough-password"
HEADER_TIMEOUT_MS = 1000
REQUEST_TIMEOUT_MS = 2000

# Names an attacker tries: traversal, separators, NUL, markup, SQL, size, look-alikes, bidi override, dot files.
HOSTILE_NAMES = [
    "../x", "..%2fx", "..\\x", "a/b", "a\x00b", "<script>alert(1)</script>", "'; DROP TABLE users;--",
    "x" * 10240, "c\u0430t",  # Cyrillic a
    "\u202eexe.txt", ".hidden", "..", "a\r\nb", "a b", "$(id)", "%00",
]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hostile")
    sqlite_dir = tmp / "sqlite"
    sqlite_dir.mkdir()
    db = sqlite3.connect(sqlite_dir / "shop.db")
    db.executescript("CREATE TABLE orders (id INTEGER, code TEXT);"
                     "INSERT INTO orders VALUES (1, 'a'), (2, 'b'), (3, NULL);")
    db.commit()
    db.close()
    (tmp / "outside.db").write_bytes((sqlite_dir / "shop.db").read_bytes())
    os.symlink(tmp / "outside.db", sqlite_dir / "link.db")
    server = Server(tmp, ["--sqlite-dir", str(sqlite_dir), "--header-read-timeout-ms", str(HEADER_TIMEOUT_MS),
                          "--request-timeout-ms", str(REQUEST_TIMEOUT_MS)]).start()
    yield server, tmp
    server.stop()


@pytest.fixture(scope="module")
def server(env):
    return env[0]


@pytest.fixture(scope="module")
def admin(server):
    c = Client(server.url, login(server.url))
    r = c.post(f"{P}/datasets?name=base", data=b"a,b,s\n1,2,x\n3,4,y\n5,0,z\n", headers={"Content-Type": "text/csv"})
    assert r.status_code == 201, r.text
    return c


def alive(server):
    assert requests.get(server.url + "/healthz", timeout=5).status_code == 200


def snapshot(admin):
    """What a user would see of the stored state: users, projects, datasets (with versions), recipes,
    connections, deployments, models and API keys of the default project."""
    out = {}
    for key, path in [("users", "/api/v1/users"), ("projects", "/api/v1/projects"), ("datasets", f"{P}/datasets"),
                      ("recipes", f"{P}/recipes"), ("connections", f"{P}/connections"),
                      ("deployments", f"{P}/deployments"), ("models", f"{P}/models"), ("api_keys", f"{P}/api-keys")]:
        r = admin.get(path)
        assert r.status_code == 200, r.text
        body = r.json()
        items = next(v for v in body.values() if isinstance(v, list))
        if key == "api_keys":  # last_used_at moves with use; the keys themselves must not
            items = [{k: v for k, v in x.items() if k != "last_used_at"} for x in items]
        out[key] = sorted(json.dumps(x, sort_keys=True) for x in items)
    return out


def files_outside_data(tmp):
    """Every path under the test's temporary directory except the server's own data dir and log."""
    return sorted(str(p.relative_to(tmp)) for p in tmp.rglob("*")
                  if not str(p.relative_to(tmp)).startswith("data") and p.name != "server.log")


def is_problem(r, *statuses):
    assert r.status_code in statuses, f"expected one of {statuses}, got {r.status_code}: {r.text[:300]}"
    assert r.headers["Content-Type"].startswith("application/problem+json"), r.headers
    body = r.json()
    for key in ("type", "title", "status", "detail", "request_id"):
        assert key in body, body
    assert body["status"] == r.status_code
    return body


# ---------------------------------------------------------------------------------------------- names

def name_attempts(admin, name):
    """Every way a name reaches the server: JSON bodies, query parameters and path segments."""
    q = quote(name, safe="")
    csv = {"Content-Type": "text/csv"}
    return [
        ("dataset", "name", admin.post(f"{P}/datasets", params={"name": name}, data=b"a\n1\n", headers=csv)),
        ("dataset import", None, admin.post(f"{P}/datasets/{q}/imports",
                                            json={"source": {"kind": "sqlite", "path": "shop.db",
                                                             "query": "SELECT 1 AS x"}})),
        ("project", "name", admin.post("/api/v1/projects", json={"name": name})),
        ("recipe", "name", admin.post(f"{P}/recipes", json={"name": name, "steps": []})),
        ("deployment", "name", admin.post(f"{P}/deployments", json={"name": name, "model": "m"})),
        ("model", None, admin.post(f"{P}/models/{q}/versions", json={"run": "run_0000000000000000"})),
        ("connection", None, admin.request("PUT", f"{P}/connections/{q}",
                                           json={"kind": "sqlite", "path": "shop.db", "query": "SELECT 1"})),
        ("apply output", "output", admin.post(f"{P}/datasets/base/versions/1/apply",
                                              json={"steps": [], "output": name})),
        ("label queue", "name", admin.post(f"{P}/label-queues", json={"name": name, "dataset": "base",
                                                                     "label_column": "s", "labels": ["a", "b"]})),
        ("member", None, admin.request("PUT", f"{P}/members/{q}", json={"role": "viewer"})),
    ]


@pytest.mark.parametrize("name", HOSTILE_NAMES, ids=lambda n: repr(n[:24]))
def test_hostile_names_are_refused_everywhere_and_change_nothing(env, admin, name):
    server, tmp = env
    before, files_before = snapshot(admin), files_outside_data(tmp)
    for kind, field, r in name_attempts(admin, name):
        where = f"{kind} {name[:40]!r}: {r.status_code} {r.text[:300]}"
        # Refused: 400 naming the field, or for path segments a 404/405 (no such resource or route).
        assert r.status_code in (400, 404, 405), where
        body = is_problem(r, r.status_code)
        if field and r.status_code == 400:
            assert any(e.get("field") == field for e in body.get("errors", [])) or field in body["detail"], where
        # The echo of the name (if any) is inside a JSON string, never raw markup outside one.
        assert "<script>" not in r.text.replace(json.dumps(name)[1:-1], ""), where
    assert snapshot(admin) == before
    assert files_outside_data(tmp) == files_before
    alive(server)


def test_hostile_usernames(env, admin):
    """Traversal, markup, SQL and control characters are refused as usernames. Dot names ('.', '..') are
    accepted today; they stay manageable through percent-encoded path segments, and the literal dot
    segments reach nothing else."""
    server, tmp = env
    before = snapshot(admin)
    for name in ["../x", "a/b", "a\x00b", "<script>alert(1)</script>", "'; DROP TABLE users;--", "x" * 10240,
                 "c\u0430t", "\u202eabc", "a\r\nb", "a b", ""]:
        assert_problem(admin.post("/api/v1/users", json={"username": name, "password": PASSWORD}), 400, "username")
    assert snapshot(admin) == before
    for name, encoded in [(".", "%2E"), ("..", "%2E%2E")]:
        r = admin.post("/api/v1/users", json={"username": name, "password": PASSWORD})
        if r.status_code == 400:
            continue
        assert r.status_code == 201, r.text
        r = admin.patch(f"/api/v1/users/{encoded}", json={"disabled": True})
        assert r.status_code == 200 and r.json()["username"] == name, r.text
        assert admin.patch(f"/api/v1/users/{name}", json={"disabled": True}).status_code in (400, 404, 405)
    users = {u["username"]: u for u in admin.get("/api/v1/users").json()["users"]}
    assert users["admin"]["disabled"] is False and users["admin"]["admin"] is True
    files_before = files_outside_data(tmp)
    assert files_outside_data(tmp) == files_before


@pytest.mark.parametrize("name", ["<script>alert(1)</script>", "'; DROP TABLE api_keys;--", "\u202eexe.txt",
                                  "c\u0430t", "../../etc/passwd", "{{7*7}}", "${jndi:ldap://x/a}"])
def test_free_text_names_are_stored_verbatim_and_served_as_json(server, admin, name):
    """API key names are free text by design (1-64 bytes of printable UTF-8): kept byte for byte, returned only
    as JSON strings with nosniff and a CSP that forbids scripts — never interpreted (no template, no SQL).
    Bidirectional controls, which make a listed name read differently than it is, are refused."""
    r = admin.post(f"{P}/api-keys", json={"name": name, "permissions": ["read"]})
    if "\u202e" in name:
        is_problem(r, 400)
        assert "bidirectional" in r.json()["detail"], r.text
        return
    assert r.status_code == 201, r.text
    made = r.json()
    assert made["name"] == name
    listing = admin.get(f"{P}/api-keys")
    assert listing.headers["Content-Type"].startswith("application/json")
    assert listing.headers["X-Content-Type-Options"] == "nosniff"
    assert listing.headers["Content-Security-Policy"] == "default-src 'none'; frame-ancestors 'none'"
    listed = next(k for k in listing.json()["api_keys"] if k["id"] == made["id"])
    assert listed["name"] == name and "49" not in listed["name"]
    assert admin.get("/api/v1/users").status_code == 200  # the SQL in the name did nothing
    assert admin.delete(f"{P}/api-keys/{made['id']}").status_code == 204
    alive(server)


def test_encoded_traversal_in_paths_stays_in_its_route(server, admin):
    for path in [f"{P}/datasets/..%2f..%2fusers", f"{P}/datasets/%2e%2e", f"{P}/datasets/%2e%2e%2f%2e%2e%2fusers",
                 "/api/v1/projects/default%2f..%2f..%2fusers", f"{P}/datasets/base%00.csv",
                 f"{P}/datasets/base/versions/1/export%3fformat=csv%00", "/api/v1/projects/%2e%2e/datasets",
                 f"{P}/datasets/base/versions/..%2f..%2f..%2fetc%2fpasswd/rows"]:
        r = admin.get(path)
        assert r.status_code in (400, 404, 405), f"{path}: {r.status_code} {r.text[:200]}"
        is_problem(r, r.status_code)
        assert "root:" not in r.text and '"users"' not in r.text
    alive(server)


# ---------------------------------------------------------------------------------------------- expressions

@pytest.mark.parametrize("expr,status,needle", [
    ("a = 1; DROP TABLE datasets", 400, "';'"),
    ("a = 1 union select * from users", 400, "union"),
    ("$(rm -rf /)", 400, "'$'"),
    ("`rm -rf /` = 1", 400, "unknown column"),
    ("system('id')", 400, "unknown function 'system'"),
    ("load_extension('x') = 1", 400, "unknown function"),
    ("nosuch(a) = 1", 400, "unknown function 'nosuch'"),
    ("(" * 300 + "a = 1" + ")" * 300, 400, "nested too deeply"),
    ("s = '\\ud800'", 400, "surrogate"),
    ("a between 1 and", 400, "end of expression"),
    ("regex_match(s, '(a+)+$')", 400, "catastrophic"),
    ("regex_match(s, '(a|a)*b')", 400, "catastrophic"),
    ("regex_match(s, '(x)\\\\1')", 400, "back-reference"),
    ("regex_match(s, '[')", 400, "regex"),
    ("a / 0 = 1", 200, None),                 # division by zero is null: no rows, no error
    ("a % 0 = 1", 200, None),
    ("a * 9223372036854775807 * 2 > 0", 200, None),  # overflow is null
])
def test_browse_filter_payloads(server, admin, expr, status, needle):
    r = admin.get(f"{P}/datasets/base/versions/1/rows", params={"filter": expr}, timeout=10)
    if status == 200:
        assert r.status_code == 200, r.text
        assert r.json()["rows"] == [], r.json()
    else:
        body = assert_problem(r, status, needle)
        assert any(isinstance(e.get("position"), int) and e["position"] >= 1 for e in body["errors"]), body
    alive(server)


def test_browse_filter_longer_than_the_header_limit_is_431(server, admin):
    for expr in ["(" * 100000 + "a" + ")" * 100000, "a = " + "9" * 100000, "not " * 50000 + "true"]:
        r = admin.get(f"{P}/datasets/base/versions/1/rows", params={"filter": expr}, timeout=10)
        assert_problem(r, 431)
    alive(server)


@pytest.mark.parametrize("op", ["filter_rows", "derive"])
def test_recipe_expression_bombs(server, admin, op):
    def preview(expr):
        params = {"expr": expr} if op == "filter_rows" else {"name": "z", "expr": expr}
        t = time.time()
        r = admin.post(f"{P}/datasets/base/versions/1/preview", json={"steps": [{"op": op, "params": params}]},
                       timeout=20)
        assert time.time() - t < 5, f"{expr[:40]!r} took {time.time() - t:.1f} s"
        return r
    field = "steps[0].params.expr"
    assert_problem(preview("(" * 100000 + "a" + ")" * 100000), 400, field, "65536")
    assert_problem(preview("a = '" + "x" * 70000 + "'"), 400, "65536")
    for deep in ["(" * 1000 + "a > 1" + ")" * 1000, "-" * 60000 + "a > 1", "a > 0 and " * 6000 + "true",
                 "if(" * 2000 + "true" + ",true,false)" * 2000, "lower(" * 1000 + "s" + ")" * 1000 + " = 'x'"]:
        body = assert_problem(preview(deep), 400, field, "nested too deeply")
        assert any(e.get("position") for e in body["errors"]), body
    assert_problem(preview("nosuch(a) > 1"), 400, "unknown function 'nosuch'", "at 1")
    assert_problem(preview("a > 1 )"), 400, field)
    # Wide but flat: allowed, and still quick.
    assert preview("a in (" + ",".join(["1"] * 10000) + ")").status_code == 200
    r = preview("a / 0 > 1" if op == "filter_rows" else "a / 0")
    assert r.status_code == 200, r.text
    if op == "derive":
        assert [row["z"] for row in r.json()["rows"]] == [None, None, None]
    # Nothing was saved by previews.
    assert [d["name"] for d in admin.get(f"{P}/datasets").json()["datasets"]].count("base") == 1
    assert admin.get(f"{P}/datasets/base").json()["latest_version"] == 1
    alive(server)


# Regexes against long values run on their own server: a backtracking engine that hangs would otherwise
# keep this module's server busy (it is killed, not drained, at the end).
@pytest.fixture(scope="module")
def regex_server(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("regex")).start()
    c = Client(s.url, login(s.url))
    rows = ["a" * 30 + "!", "a" * 300 + "!", "a" * 4000 + "!", "ok"]
    r = c.post(f"{P}/datasets?name=long", data=("s\n" + "\n".join(rows) + "\n").encode(),
               headers={"Content-Type": "text/csv"})
    assert r.status_code == 201, r.text
    yield s, c
    s.stop(sig=signal.SIGKILL)


# Sanitizer builds (make test-asan sets ASAN_OPTIONS) run 10-50x slower: the bound scales with them. A
# backtracking regex still misses it by orders of magnitude (the one fixed here ran for 1000 s on 34 chars).
TIME_SCALE = 20 if "ASAN_OPTIONS" in os.environ else 1


def timed(fn, limit=5):
    limit *= TIME_SCALE
    t = time.time()
    try:
        r = fn()
    except requests.Timeout:
        pytest.fail(f"no answer within {limit * 2} s: the regex is backtracking")
    assert time.time() - t < limit, f"took {time.time() - t:.1f} s"
    return r


@pytest.mark.parametrize("pattern", ["a*a*a*b", ".*.*.*b", "(ab)*", "[ab]*c", "a{1,5}a{1,5}a*b"])
def test_regex_match_in_filters_runs_in_bounded_time(regex_server, pattern):
    s, c = regex_server
    r = timed(lambda: c.get(f"{P}/datasets/long/versions/1/rows", params={"filter": f"regex_match(s, '{pattern}')"},
                            timeout=10 * TIME_SCALE))
    if r.status_code == 400:
        assert_problem(r, 400, "regex")
    else:
        assert r.status_code == 200, r.text
    alive(s)


@pytest.mark.parametrize("pattern", ["(a+)+$", "^(a|aa)+$", "a*a*a*a*b", "(.*a){12}"])
def test_contract_regex_cannot_hang_a_check(regex_server, pattern):
    """Any project reader may POST …/check with a contract in the body; its regex must not pin a thread."""
    s, c = regex_server
    r = timed(lambda: c.post(f"{P}/datasets/long/versions/1/check",
                             json={"contract": {"columns": {"s": {"regex": pattern}}}}, timeout=10 * TIME_SCALE))
    if r.status_code == 400:
        assert_problem(r, 400, "regex")
    else:
        assert r.status_code == 200, r.text
    alive(s)


# regex_replace used the backtracking executor: a*a*a*b on a 300-character value did not finish.
def test_regex_replace_step_runs_in_bounded_time(regex_server):
    s, c = regex_server
    timed(lambda: c.post(f"{P}/datasets/long/versions/1/preview",
                         json={"steps": [{"op": "regex_replace",
                                          "params": {"columns": ["s"], "pattern": "a*a*a*b", "replacement": "x"}}]},
                         timeout=10 * TIME_SCALE))


# ---------------------------------------------------------------------------------------------- SQL

def sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("query,needle", [
    ("SELECT * FROM orders; DELETE FROM orders", "only one statement"),
    ("SELECT 1; ATTACH DATABASE 'evil.db' AS e", "only one statement"),
    ("DELETE FROM orders", "not authorized"),
    ("DELETE FROM orders RETURNING *", "not authorized"),
    ("INSERT INTO orders VALUES (9, 'z') RETURNING *", "not authorized"),
    ("UPDATE orders SET code = 'pwned' RETURNING *", "not authorized"),
    ("DROP TABLE orders", "not authorized"),
    ("CREATE TABLE t(x)", "not authorized"),
    ("ATTACH DATABASE 'evil.db' AS e", "not authorized"),
    ("ATTACH DATABASE ':memory:' AS e", "not authorized"),
    ("PRAGMA writable_schema=1", "not authorized"),
    ("PRAGMA journal_mode=delete", "not authorized"),
    ("SELECT load_extension('/lib/x86_64-linux-gnu/libc.so.6')", "not authorized"),
    ("SELECT readfile('/etc/passwd')", "readfile"),
    ("SELECT writefile('pwned.txt', 'x')", "writefile"),
    ("VACUUM INTO 'copy.db'", "read-only"),
    ("SELEC * FROM orders", "syntax"),
])
def test_sqlite_queries_cannot_write_attach_or_load(env, admin, query, needle):
    server, tmp = env
    db = tmp / "sqlite" / "shop.db"
    digest, files_before = sha(db), files_outside_data(tmp)
    r = admin.post(f"{P}/datasets/sq/imports?wait=true",
                   json={"source": {"kind": "sqlite", "path": "shop.db", "query": query}}, timeout=30)
    assert_problem(r, 400, needle)
    assert sha(db) == digest
    assert files_outside_data(tmp) == files_before
    assert admin.get(f"{P}/datasets/sq").status_code == 404
    # A saved connection with the same query is refused the same way when used.
    r = admin.request("PUT", f"{P}/connections/evil", json={"kind": "sqlite", "path": "shop.db", "query": query})
    if r.status_code == 200:
        r = admin.post(f"{P}/datasets/sq/imports?wait=true", json={"source": {"connection": "evil"}}, timeout=30)
        assert_problem(r, 400, needle)
        assert admin.delete(f"{P}/connections/evil").status_code == 204
    else:
        is_problem(r, 400)
    assert sha(db) == digest
    rows = sqlite3.connect(f"file:{db}?mode=ro", uri=True).execute("SELECT * FROM orders ORDER BY id").fetchall()
    assert rows == [(1, "a"), (2, "b"), (3, None)]
    alive(server)


@pytest.mark.parametrize("path,statuses", [
    ("../outside.db", (400, 403, 404)), ("sqlite/../../outside.db", (400, 403, 404)), ("/etc/passwd", (400, 403)),
    ("link.db", (400, 403)),  # a symlink inside the directory pointing out of it
    ("file:shop.db?mode=rwc", (400,)), ("file:/etc/passwd", (400,)), ("shop.db\x00.txt", (400,)),
    (":memory:", (400, 404)), (".", (400, 403)), ("", (400,)), ("x" * 5000, (400, 404)),
])
def test_sqlite_paths_cannot_escape_the_sqlite_dir(env, admin, path, statuses):
    server, tmp = env
    files_before = files_outside_data(tmp)
    r = admin.post(f"{P}/datasets/sq/imports?wait=true",
                   json={"source": {"kind": "sqlite", "path": path, "query": "SELECT * FROM orders"}}, timeout=30)
    is_problem(r, *statuses)
    assert "root:x" not in r.text
    assert files_outside_data(tmp) == files_before
    assert admin.get(f"{P}/datasets/sq").status_code == 404


def test_sqlite_runaway_queries_are_bounded(env, admin):
    r = admin.post(f"{P}/datasets/sq/imports?wait=true", json={"source": {
        "kind": "sqlite", "path": "shop.db", "max_rows": 1000,
        "query": "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x FROM c"}}, timeout=30)
    assert_problem(r, 409, "max_rows")
    assert admin.get(f"{P}/datasets/sq").status_code == 404


# A one-column row that is NULL used to be written as a blank CSV line and lost (SQLite source).
def test_sqlite_single_column_nulls_are_kept(admin):
    r = admin.post(f"{P}/datasets/nulls/imports?wait=true",
                   json={"source": {"kind": "sqlite", "path": "shop.db", "query": "SELECT code FROM orders"}})
    assert r.status_code == 201, r.text
    assert r.json()["rows"] == 3 and r.json()["columns"][0]["missing"] == 1, r.json()


# ---------------------------------------------------------------------------------------------- bodies

JSON = {"Content-Type": "application/json"}


def test_hostile_json_bodies(server, admin):
    before = snapshot(admin)
    cases = [
        ("[" * 100000 + "]" * 100000, 400, "nested"),
        ('{"a":' * 100000 + "1" + "}" * 100000, 400, "nested"),
        (b'{"name":"' + b"x" * (20 << 20) + b'"}', 413, "exceeds"),
        (b'{"name":"ab', 400, "json"),
        (b'{"name":"a\xff\xfeb"}', 400, "utf-8"),
        (b'{"name":"a\xed\xa0\x80b"}', 400, "utf-8"),  # an encoded surrogate
        (b'{"name":1e999}', 400, "1e999"),
        (b'{"name":NaN}', 400, "json"),
        (b"", 400, "json"),
        (b"\x00\x00\x00\x00", 400, "json"),
        (b'{"name":"ok"} {"name":"second"}', 400, "json"),
    ]
    for body, status, needle in cases:
        r = admin.post("/api/v1/projects", data=body, headers=JSON)
        assert_problem(r, status, needle)
    assert_problem(admin.post("/api/v1/projects", data=b'{"name":"typed"}', headers={"Content-Type": "text/plain"}),
                   415, "application/json")
    assert_problem(admin.post("/api/v1/projects", data=b"name=form", headers={
        "Content-Type": "application/x-www-form-urlencoded"}), 400)
    # Type confusion in well-formed JSON.
    for body in [{"name": ["a"]}, {"name": {"$ne": None}}, {"name": None}, {"name": 7}, ["name"], "name", 1e308]:
        is_problem(admin.post("/api/v1/projects", json=body), 400, 415)
    assert snapshot(admin) == before
    alive(server)


def test_duplicate_json_keys_resolve_to_one_value(server, admin):
    """Duplicate keys are either refused or resolved one way (the last), never half of each."""
    before = {p["name"] for p in admin.get("/api/v1/projects").json()["projects"]}
    r = admin.post("/api/v1/projects", data=b'{"name":"dupfirst","name":"duplast"}', headers=JSON)
    after = {p["name"] for p in admin.get("/api/v1/projects").json()["projects"]}
    if r.status_code == 400:
        assert after == before
    else:
        assert r.status_code == 201 and r.json()["name"] == "duplast", r.text
        assert after - before == {"duplast"}


def test_truncated_and_malformed_uploads_write_nothing(server, admin):
    before = snapshot(admin)
    csv = {"Content-Type": "text/csv"}
    assert_problem(admin.post(f"{P}/datasets?name=trunc", data=b'a,b\n1,"abc\n2,"de', headers=csv), 400, "line")
    assert_problem(admin.post(f"{P}/datasets?name=trunc", data=b'a,b\n1,"never closed', headers=csv), 400)
    is_problem(admin.post(f"{P}/datasets?name=trunc", files={"file": ("x.csv", b'a,b\n1,"ab')}), 400, 415)
    assert_problem(admin.post(f"{P}/datasets?name=trunc&format=json", data=b'[{"a":1},{"a":', headers=JSON), 400)
    assert_problem(admin.post(f"{P}/datasets?name=trunc&format=jsonl", data=b'{"a":1}\n{"a":', headers=JSON), 400,
                   "line 2")
    assert_problem(admin.post(f"{P}/datasets?name=trunc&format=xlsx", data=b"PK\x03\x04" + b"\x00" * 64,
                              headers={"Content-Type": "application/octet-stream"}), 400)
    assert_problem(admin.post(f"{P}/datasets?name=trunc&format=json", data=b"[" * 100000, headers=JSON), 400)
    assert snapshot(admin) == before
    alive(server)


# ---------------------------------------------------------------------------------------------- slow clients

def connect(server, timeout=10):
    host, port = server.url.replace("http://", "").split(":")
    return socket.create_connection((host, int(port)), timeout=timeout)


def read_all(sock):
    data = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    except (socket.timeout, ConnectionResetError):
        pass
    return data


def closed_or_408(data):
    return data == b"" or data.split(b"\r\n")[0].startswith(b"HTTP/1.1 408")


def test_headers_sent_one_byte_at_a_time_are_cut_off(server):
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 40 + b"\r\n\r\n"
    sock = connect(server)
    start, sent, cut = time.time(), 0, False
    try:
        for b in request:
            if select.select([sock], [], [], 0)[0]:  # the server answered or closed
                break
            try:
                sock.sendall(bytes([b]))
            except (BrokenPipeError, ConnectionResetError):
                cut = True
                break
            sent += 1
            time.sleep(0.1)
            if sent % 5 == 0:  # meanwhile everyone else is served
                alive(server)
        data = b"" if cut else read_all(sock)
    finally:
        sock.close()
    assert sent < len(request), "the whole request trickled in: no header timeout"
    assert cut or closed_or_408(data), data[:200]
    assert time.time() - start < HEADER_TIMEOUT_MS / 1000 * 3, time.time() - start
    alive(server)


def test_body_that_stalls_after_its_content_length_is_cut_off(server):
    sock = connect(server)
    try:
        sock.sendall(b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 1000\r\n\r\n{\"username\":\"admin\",")
        start = time.time()
        alive(server)
        data = read_all(sock)
    finally:
        sock.close()
    assert closed_or_408(data), data[:200]
    assert time.time() - start < REQUEST_TIMEOUT_MS / 1000 + 5
    alive(server)


def test_many_idle_half_open_connections_do_not_starve_others(server):
    socks = []
    try:
        for _ in range(64):
            s = connect(server)
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            socks.append(s)
        t = time.time()
        alive(server)
        assert time.time() - t < 2
        assert requests.post(server.url + "/api/v1/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD},
                             timeout=5).status_code == 200
    finally:
        for s in socks:
            s.close()


def test_request_smuggling_shapes_are_refused(server):
    for raw in [b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nabcdef",
                b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"0\r\n\r\nGET /api/v1/users HTTP/1.1\r\nHost: x\r\n\r\n",
                b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: -1\r\n\r\n",
                b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"]:
        sock = connect(server, timeout=5)
        try:
            sock.sendall(raw)
            data = read_all(sock)
        finally:
            sock.close()
        status_lines = [l for l in data.split(b"\r\n") if l.startswith(b"HTTP/1.1 ")]
        assert status_lines, data
        assert status_lines[0].split(b" ")[1].startswith(b"4"), data[:300]
        assert b'"users"' not in data
    alive(server)


# ---------------------------------------------------------------------------------------------- credentials

def test_password_guessing_locks_the_username_whatever_the_client_claims(server, admin):
    assert admin.post("/api/v1/users", json={"username": "brute", "password": PASSWORD}).status_code == 201
    anon = requests.Session()
    wrong_existing = anon.post(server.url + "/api/v1/auth/login", json={"username": "brute", "password": "nope-1234"})
    wrong_missing = anon.post(server.url + "/api/v1/auth/login", json={"username": "nobody-here", "password": "nope"})
    # The same answer for a wrong password and an unknown user: usernames cannot be probed.
    assert wrong_existing.status_code == wrong_missing.status_code == 401
    assert wrong_existing.json()["detail"] == wrong_missing.json()["detail"]
    for i in range(4):  # 5 failures in all, each claiming a different client address
        r = anon.post(server.url + "/api/v1/auth/login", json={"username": "brute", "password": f"guess-{i}-xyz"},
                      headers={"X-Forwarded-For": f"203.0.113.{i}", "X-Real-IP": f"198.51.100.{i}"})
        assert_problem(r, 401)
    for headers in [{}, {"X-Forwarded-For": "203.0.113.99"}, {"Forwarded": "for=192.0.2.1"}]:
        r = anon.post(server.url + "/api/v1/auth/login", json={"username": "brute", "password": PASSWORD},
                      headers=headers)
        assert_problem(r, 429, "too many failed logins")
        assert 1 <= int(r.headers["Retry-After"]) <= 60
    # Nothing about the locked account leaks through other doors; other users log in.
    is_problem(anon.post(server.url + "/api/v1/auth/login",
                         json={"username": "brute", "password": PASSWORD, "extra": 1}), 400, 429)
    assert login(server.url) is not None


def test_forged_and_tampered_tokens(server, admin):
    token = login(server.url)
    who = lambda tok: requests.get(server.url + "/api/v1/auth/whoami", headers={"Authorization": f"Bearer {tok}"},
                                   timeout=10)
    assert who(token).status_code == 200
    flipped = token[:-3] + ("A" if token[-3] != "A" else "B") + token[-2:]
    for forged in [flipped, token[:-1], token + "A", token.upper(), token.replace("lt_", "lk_"), "lt_", "lk_x_y",
                   "lk_" + "A" * 9 + "_" + "B" * 40, "A" * 10000, "\u00e9" * 100, "null", "undefined", "[]"]:
        assert_problem(who(forged), 401)
    assert_problem(who("A" * 100 * 1024), 431)
    # Credentials are taken only from the Authorization header: not from cookies or the query string.
    r = requests.get(server.url + "/api/v1/auth/whoami", cookies={"token": token, "session": token}, timeout=10)
    assert_problem(r, 401)
    assert_problem(requests.get(server.url + f"/api/v1/auth/whoami?access_token={token}&token={token}", timeout=10), 401)
    assert_problem(requests.get(server.url + "/api/v1/auth/whoami", headers={"Authorization": f"Basic {token}"},
                                timeout=10), 401)
    # A logged-out token is dead, everywhere.
    assert requests.post(server.url + "/api/v1/auth/logout", headers={"Authorization": f"Bearer {token}"},
                         timeout=10).status_code == 204
    assert_problem(who(token), 401)
    assert_problem(requests.post(server.url + "/api/v1/auth/logout", headers={"Authorization": f"Bearer {token}"},
                                 timeout=10), 401)
    assert_problem(requests.get(server.url + f"{P}/datasets", headers={"Authorization": f"Bearer {token}"},
                                timeout=10), 401)


def test_tampered_api_keys(server, admin):
    made = admin.post(f"{P}/api-keys", json={"name": "tamper", "permissions": ["read"]}).json()
    other = admin.post(f"{P}/api-keys", json={"name": "tamper2", "permissions": ["read"]}).json()
    key = made["key"]
    use = lambda k: requests.get(server.url + f"{P}/datasets", headers={"Authorization": f"Bearer {k}"}, timeout=10)
    assert use(key).status_code == 200
    secret = key[len(made["prefix"]) + 1:]
    for forged in [key[:-1] + ("A" if key[-1] != "A" else "B"), key[:-1], key + "x",
                   made["prefix"] + "_" + other["key"][len(other["prefix"]) + 1:],  # this id, another key's secret
                   other["prefix"] + "_" + secret,                                  # another id, this secret
                   made["prefix"] + "_", made["prefix"], made["prefix"] + "_" + secret + "\x00"]:
        r = use(forged)
        assert r.status_code in (400, 401), (forged, r.status_code, r.text)
        assert secret not in r.text
    assert admin.delete(f"{P}/api-keys/{made['id']}").status_code == 204
    assert_problem(use(key), 401, "revoked")
    assert use(other["key"]).status_code == 200
    assert admin.delete(f"{P}/api-keys/{other['id']}").status_code == 204


def raw_exchange(server, payload):
    sock = connect(server, timeout=5)
    try:
        sock.sendall(payload)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        return data.split(b"\r\n\r\n")[0]
    finally:
        sock.close()


@pytest.mark.parametrize("value", [b"abc\r\nSet-Cookie: evil=1", b"abc\nSet-Cookie: evil=1", b"abc\rSet-Cookie: evil=1",
                                   b"abc%0d%0aSet-Cookie:%20evil=1", b"abc\x00Set-Cookie: evil=1",
                                   b"<script>alert(1)</script>", b"\xff\xfe\xfd", b"a" * 8000, b"abc\x7f\x1b[31m"])
def test_request_id_is_never_echoed_raw(server, value):
    head = raw_exchange(server, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Request-Id: " + value + b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0].startswith(b"HTTP/1.1 "), head
    assert not any(l.lower().startswith(b"set-cookie") for l in lines), head
    ids = [l.split(b":", 1)[1].strip() for l in lines if l.lower().startswith(b"x-request-id:")]
    assert len(ids) == 1, head
    assert re.fullmatch(rb"[A-Za-z0-9._:-]{1,128}", ids[0]), ids[0]
    assert b"<" not in head and b"\x1b" not in head and b"evil" not in head
    alive(server)


# ---------------------------------------------------------------------------------------------- other projects

@pytest.fixture(scope="module")
def tenants(server, admin):
    """'bob' owns project 'bravo' with one of everything; 'alice' owns 'alpha' and is not in 'bravo'."""
    for name in ("alice", "bob"):
        assert admin.post("/api/v1/users", json={"username": name, "password": PASSWORD}).status_code == 201
    alice = Client(server.url, login(server.url, "alice", PASSWORD))
    bob = Client(server.url, login(server.url, "bob", PASSWORD))
    assert alice.post("/api/v1/projects", json={"name": "alpha"}).status_code == 201
    assert bob.post("/api/v1/projects", json={"name": "bravo"}).status_code == 201
    B = "/api/v1/projects/bravo"
    r = bob.post(f"{B}/datasets?name=secretdata", data=churn_csv(200).encode(), headers={"Content-Type": "text/csv"})
    assert r.status_code == 201, r.text
    r = bob.post(f"{B}/runs", json={"dataset": "secretdata", "target": "churned", "task": "binary",
                                    "params": {"n_estimators": 5}})
    assert r.status_code == 202, r.text
    run, job = r.json()["run"], r.json()["job"]
    assert bob.wait_job(job)["state"] == "succeeded"
    assert bob.post(f"{B}/models/secretmodel/versions", json={"run": run}).status_code == 201
    assert bob.post(f"{B}/deployments", json={"name": "secretdep", "model": "secretmodel"}).status_code in (200, 201)
    assert bob.post(f"{B}/recipes", json={"name": "secretrecipe", "steps": []}).status_code == 201
    assert bob.request("PUT", f"{B}/connections/secretconn", json={
        "kind": "sqlite", "path": "shop.db", "query": "SELECT * FROM orders"}).status_code == 200
    assert bob.post(f"{B}/label-queues", json={"name": "secretq", "dataset": "secretdata", "label_column": "plan",
                                               "labels": ["a", "b"]}).status_code == 201
    key = bob.post(f"{B}/api-keys", json={"name": "k", "permissions": ["read"]}).json()
    r = alice.post("/api/v1/projects/alpha/datasets?name=mine", data=churn_csv(100).encode(),
                   headers={"Content-Type": "text/csv"})
    assert r.status_code == 201, r.text
    return {"alice": alice, "bob": bob, "run": run, "job": job, "key_id": key["id"]}


SECRETS = ("secretdata", "secretmodel", "secretdep", "secretrecipe", "secretconn", "secretq", "churned")


def test_guessing_into_another_project_is_404_and_leaks_nothing(tenants):
    alice, run, job = tenants["alice"], tenants["run"], tenants["job"]
    B = "/api/v1/projects/bravo"
    instance = {"age": 30, "income": 1000.0, "plan": "pro", "signup": "2024-01-01", "visits": 3}
    attempts = [
        ("GET", f"{B}/datasets", None), ("GET", f"{B}/datasets/secretdata", None),
        ("GET", f"{B}/datasets/secretdata/versions/1/rows", None),
        ("GET", f"{B}/datasets/secretdata/versions/1/export?format=csv", None),
        ("GET", f"{B}/datasets/secretdata/versions/latest/profile", None),
        ("DELETE", f"{B}/datasets/secretdata/versions/1", None),
        ("POST", f"{B}/datasets/secretdata/versions/1/apply", {"steps": [], "output": "stolen"}),
        ("GET", f"{B}/runs", None), ("GET", f"{B}/runs/{run}", None), ("PATCH", f"{B}/runs/{run}", {"tags": {}}),
        ("GET", f"{B}/models", None), ("GET", f"{B}/models/secretmodel/versions/1/bundle", None),
        ("POST", f"{B}/models/secretmodel/versions/1/stage", {"stage": "archived"}),
        ("GET", f"{B}/deployments/secretdep", None), ("DELETE", f"{B}/deployments/secretdep", None),
        ("POST", f"{B}/deployments/secretdep/predict", {"instances": [instance]}),
        ("POST", "/v2/models/bravo:secretdep/infer", {"inputs": []}),
        ("GET", f"{B}/recipes/secretrecipe", None), ("GET", f"{B}/connections/secretconn", None),
        ("DELETE", f"{B}/connections/secretconn", None), ("GET", f"{B}/label-queues/secretq", None),
        ("GET", f"{B}/api-keys", None), ("DELETE", f"{B}/api-keys/{tenants['key_id']}", None),
        ("GET", f"{B}/members", None), ("PUT", f"{B}/members/alice", {"role": "owner"}),
        ("POST", f"{B}/datasets?name=planted", None),
    ]
    for method, path, body in attempts:
        r = alice.request(method, path, json=body) if body is not None else alice.request(method, path)
        where = f"{method} {path}: {r.status_code} {r.text[:300]}"
        assert r.status_code == 404, where
        assert_problem(r, 404, "project 'bravo' not found")
        for secret in SECRETS:
            assert secret not in r.text or secret in path, where
    # Guessed ids through alice's own project or the global job routes: also 404, nothing leaked.
    A = "/api/v1/projects/alpha"
    for method, path, body in [
        ("GET", f"/api/v1/jobs/{job}", None), ("POST", f"/api/v1/jobs/{job}/cancel", None),
        ("GET", f"{A}/runs/{run}", None), ("GET", f"{A}/runs/{run}/trials", None),
        ("POST", f"{A}/runs/{run}/partial-dependence", {"columns": ["age"]}),
        ("POST", f"{A}/models/stolen/versions", {"run": run}),
        ("GET", f"{A}/datasets/secretdata", None), ("GET", f"{A}/models/secretmodel", None),
        ("POST", f"{A}/deployments", {"name": "stolen", "model": "secretmodel"}),
        ("POST", f"{A}/runs", {"dataset": "secretdata", "target": "churned", "task": "binary"}),
        ("POST", f"{A}/datasets/mine/imports", {"source": {"connection": "secretconn"}}),
        ("POST", f"{A}/datasets/mine/versions/1/apply", {"recipe": "secretrecipe", "output": "x"}),
        ("DELETE", f"{A}/api-keys/{tenants['key_id']}", None),
    ]:
        r = alice.request(method, path, json=body) if body is not None else alice.request(method, path)
        where = f"{method} {path}: {r.status_code} {r.text[:300]}"
        assert r.status_code == 404, where
        is_problem(r, 404)
        assert "bravo" not in r.text and "bob" not in r.text, where
    r = alice.get(f"{A}/runs/compare", params={"ids": f"{run},{run[:-1]}0"})
    assert r.status_code in (400, 404) and "bravo" not in r.text and "churned" not in r.text, r.text
    jobs = alice.get("/api/v1/jobs")
    assert jobs.status_code == 200 and job not in jobs.text and "bravo" not in jobs.text, jobs.text[:300]
    # Bob's things are all still there and untouched.
    bob = tenants["bob"]
    assert bob.get("/api/v1/projects/bravo/deployments/secretdep").status_code == 200
    assert bob.get("/api/v1/projects/bravo/connections/secretconn").status_code == 200
    assert bob.get("/api/v1/projects/bravo/datasets/secretdata").json()["latest_version"] == 1
    assert bob.get("/api/v1/projects/bravo/datasets/planted").status_code == 404
    members = {m["user"] for m in bob.get("/api/v1/projects/bravo/members").json()["members"]}
    assert members == {"bob"}
    assert alice.get("/api/v1/projects/alpha/models/stolen").status_code == 404


def test_an_api_key_cannot_reach_another_project_by_guessing(server, tenants):
    alice = tenants["alice"]
    r = alice.post("/api/v1/projects/alpha/api-keys", json={"name": "svc", "permissions": ["read", "write"]})
    assert r.status_code == 201, r.text
    k = Client(server.url, r.json()["key"])
    assert k.get("/api/v1/projects/alpha/datasets").status_code == 200
    for path in ["/api/v1/projects/bravo/datasets", f"/api/v1/projects/bravo/runs/{tenants['run']}",
                 f"/api/v1/jobs/{tenants['job']}", "/api/v1/projects/default/datasets"]:
        r = k.get(path)
        assert r.status_code == 404, f"{path}: {r.status_code} {r.text[:200]}"
        assert "secretdata" not in r.text
