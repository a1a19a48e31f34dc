"""The audit log: every mutating call, login, API key use and permission denial is recorded (who, what, project,
when, request id, outcome); entries are hash-chained so `lathe admin audit verify` finds any edited, deleted or
inserted entry, and entries cut off the end; query by filters, export as CSV and JSON Lines, and a project's
own log for its owners."""
import csv
import io
import json
import sqlite3

import pytest

from conftest import Client, Server, assert_problem, login
from test_cli import Cli

PASSWORD = "long-enough-password"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("audit")).start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def admin(server):
    return Client(server.url, login(server.url))


def entries(client, **filters):
    r = client.get("/api/v1/admin/audit", params={"limit": 1000, **filters})
    assert r.status_code == 200, r.text
    return r.json()["entries"]


@pytest.fixture(scope="module")
def activity(server, admin):
    """Logins (good and bad), a project with an owner and a viewer, an import, a denial, an API key and its use."""
    for name in ("alice", "victor"):
        assert admin.post("/api/v1/users", json={"username": name, "password": PASSWORD}).status_code == 201
    assert Client(server.url).post("/api/v1/auth/login",
                                   json={"username": "alice", "password": "wrong-password"}).status_code == 401
    alice = Client(server.url, login(server.url, "alice", PASSWORD))
    victor = Client(server.url, login(server.url, "victor", PASSWORD))
    assert alice.post("/api/v1/projects", json={"name": "sales"}).status_code == 201
    assert alice.request("PUT", "/api/v1/projects/sales/members/victor", json={"role": "viewer"}).status_code == 200
    r = alice.post("/api/v1/projects/sales/datasets?name=leads", data=b"a,b\n1,2\n3,4\n",
                   headers={"Content-Type": "text/csv", "X-Request-Id": "import-leads-1"})
    assert r.status_code == 201, r.text
    # A viewer may not write; someone outside the project may not even see it.
    assert victor.post("/api/v1/projects/sales/datasets?name=x", data=b"a\n1\n",
                       headers={"Content-Type": "text/csv"}).status_code == 403
    assert victor.get("/api/v1/projects/default/datasets").status_code == 404
    r = alice.post("/api/v1/projects/sales/api-keys", json={"name": "reader", "permissions": ["read"]})
    assert r.status_code == 201, r.text
    key = Client(server.url, r.json()["key"])
    for _ in range(3):
        assert key.get("/api/v1/projects/sales/datasets").status_code == 200
    # Reading is not audited, for users; nor are POSTs that change nothing (the no-op ping, recipe previews).
    for _ in range(3):
        assert alice.get("/api/v1/projects/sales/datasets").status_code == 200
        assert alice.post("/api/v1/ping").status_code == 200
        assert alice.post("/api/v1/projects/sales/datasets/leads/versions/1/preview",
                          json={"steps": [{"op": "drop_columns", "params": {"columns": ["a"]}}]}).status_code == 200
    return {"alice": alice, "victor": victor, "key_id": r.json()["id"]}


def test_mutations_logins_denials_and_key_use_are_recorded(admin, activity):
    log = entries(admin)
    logins = [e for e in log if e["action"] == "POST /api/v1/auth/login"]
    assert {(e["actor"], e["outcome"]) for e in logins} >= {("admin", "ok"), ("alice", "denied"), ("alice", "ok"),
                                                            ("victor", "ok")}
    bad = next(e for e in logins if e["actor"] == "alice" and e["outcome"] == "denied")
    assert bad["status"] == 401 and bad["ip"] == "127.0.0.1"
    imp = [e for e in log if e["request_id"] == "import-leads-1"]
    assert len(imp) == 1, imp
    assert imp[0]["actor"] == "alice" and imp[0]["project"] == "sales" and imp[0]["status"] == 201
    assert imp[0]["action"] == "POST /api/v1/projects/{project}/datasets" and imp[0]["outcome"] == "ok"
    denied = [e for e in log if e["outcome"] == "denied" and e["actor"] == "victor"]
    assert {(e["status"], e["project"]) for e in denied} == {(403, "sales"), (404, "default")}, denied
    assert "viewer" in next(e for e in denied if e["status"] == 403)["detail"]["error"]
    uses = [e for e in log if e["action"] == "key.use"]
    assert len(uses) == 1 and uses[0]["api_key"] == activity["key_id"] and uses[0]["actor"] == "alice", uses
    assert not [e for e in log if e["action"].startswith("GET") and e["outcome"] == "ok"]
    assert not [e for e in log if e["action"].endswith(("/ping", "/preview"))], "no-op POSTs are not audited"
    # Passwords never reach the log.
    assert "wrong-password" not in json.dumps(log) and PASSWORD not in json.dumps(log)
    # The chain links each entry to the one before.
    assert [e["seq"] for e in log] == list(range(1, len(log) + 1))
    assert all(log[i]["prev_hash"] == log[i - 1]["hash"] for i in range(1, len(log)))


def test_filters_paging_and_project_log(admin, activity):
    mine = entries(admin, actor="alice")
    assert mine and all(e["actor"] == "alice" for e in mine)
    assert all(e["outcome"] == "denied" for e in entries(admin, outcome="denied"))
    assert all(e["action"].startswith("POST") for e in entries(admin, action="POST"))
    page = admin.get("/api/v1/admin/audit", params={"limit": 2}).json()
    assert len(page["entries"]) == 2 and page["next_after"] == page["entries"][1]["seq"]
    nxt = admin.get("/api/v1/admin/audit", params={"limit": 2, "after": page["next_after"]}).json()
    assert nxt["entries"][0]["seq"] == page["next_after"] + 1
    assert_problem(admin.get("/api/v1/admin/audit", params={"outcome": "maybe"}), 400, "outcome")
    assert_problem(admin.get("/api/v1/admin/audit", params={"limit": 0}), 400, "limit")
    # The project's owner sees the project's entries only; a viewer may not read it; others cannot see it.
    own = activity["alice"].get("/api/v1/projects/sales/audit").json()["entries"]
    assert own and all(e["project"] == "sales" for e in own)
    assert_problem(activity["victor"].get("/api/v1/projects/sales/audit"), 403, "viewer")
    assert_problem(activity["alice"].get("/api/v1/admin/audit"), 403)


def test_export_csv_and_jsonl(admin, activity):
    r = admin.get("/api/v1/admin/audit/export", params={"format": "csv"})
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert rows and rows[0]["seq"] == "1" and {"actor", "action", "outcome", "hash"} <= set(rows[0])
    r = admin.get("/api/v1/admin/audit/export", params={"format": "jsonl", "actor": "victor"})
    lines = [json.loads(x) for x in r.text.splitlines()]
    assert lines and all(e["actor"] == "victor" for e in lines)
    assert_problem(admin.get("/api/v1/admin/audit/export", params={"format": "xml"}), 400, "format")


def verify(admin):
    r = admin.get("/api/v1/admin/audit/verify")
    assert r.status_code == 200, r.text
    return r.json()


def tamper(server, sql, *args):
    server.stop()
    db = sqlite3.connect(server.data_dir / "lathe.db")
    db.execute(sql, args)
    db.commit()
    db.close()
    server.start()
    return Client(server.url, login(server.url))


def test_verify_detects_edits_deletions_and_truncation(server, admin, activity, tmp_path):
    v = verify(admin)
    assert v["ok"] is True and v["entries"] >= 10 and v["head_seq"] == v["entries"], v
    cli = Cli(server.url, tmp_path / "home")
    out = cli.run("admin", "audit", "verify", LATHE_TOKEN=login(server.url))
    assert out.returncode == 0 and "intact" in out.stdout, out.stdout + out.stderr

    # An edited entry: someone hides who imported the data.
    admin = tamper(server, "UPDATE audit_log SET actor = 'mallory' WHERE request_id = ?", "import-leads-1")
    v = verify(admin)
    seq = v["first_bad_seq"]
    assert v["ok"] is False and "modified" in v["problem"], v
    cli.url = server.url  # the restarted server listens on a new port
    out = cli.run("admin", "audit", "verify", LATHE_TOKEN=login(server.url))
    assert out.returncode == 1 and "TAMPERED" in out.stdout and str(seq) in out.stdout, out.stdout + out.stderr

    # Restoring the edit is not enough to hide a deletion in the middle.
    admin = tamper(server, "UPDATE audit_log SET actor = 'alice' WHERE request_id = ?", "import-leads-1")
    assert verify(admin)["ok"] is True
    admin = tamper(server, "DELETE FROM audit_log WHERE seq = ?", seq)
    v = verify(admin)
    assert v["ok"] is False and v["first_bad_seq"] == seq and "missing" in v["problem"], v


def test_truncating_the_end_is_detected_by_the_head(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("audit-tail")).start()
    try:
        admin = Client(s.url, login(s.url))
        for i in range(3):
            assert admin.post("/api/v1/projects", json={"name": f"p{i}"}).status_code == 201
        v = verify(admin)
        assert v["ok"] is True, v
        last = v["entries"]
        admin = tamper(s, "DELETE FROM audit_log WHERE seq >= ?", last - 1)
        # The restarted server does not reuse the deleted numbers: the gap stays visible.
        v = verify(admin)
        assert v["ok"] is False and v["first_bad_seq"] == last - 1 and "deleted" in v["problem"], v
    finally:
        s.stop()
