"""The `lathe` CLI's data commands against a real server: import with hints and quarantine, import from a
SQLite source, profile, rows, export round trip, settings and contracts, recipes preview and apply, saved
connections (password via stdin, never shown), and a labeling round. Every command is the real binary run as
a subprocess (see test_cli.Cli); the server is this module's own, started with --sqlite-dir.
"""
import csv
import io
import json
import sqlite3

import pytest
import requests

from conftest import ADMIN_PASSWORD, Server
from test_cli import Cli


@pytest.fixture(scope="module")
def sqlite_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("sqlite")
    db = sqlite3.connect(d / "shop.db")
    db.execute("CREATE TABLE orders (id INTEGER, city TEXT, amount REAL)")
    db.executemany("INSERT INTO orders VALUES (?, ?, ?)",
                   [(i, ["oslo", "lima", "pune"][i % 3], i * 1.5) for i in range(1, 121)])
    db.commit()
    db.close()
    return d


@pytest.fixture(scope="module")
def server(tmp_path_factory, sqlite_dir):
    s = Server(tmp_path_factory.mktemp("lathe"), extra_args=["--sqlite-dir", str(sqlite_dir),
                                                             "--http-source-allow", "127.0.0.0/8"]).start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def cli(server, tmp_path_factory):
    c = Cli(server.url, tmp_path_factory.mktemp("cli-home"))
    c.ok("login", "--password-stdin", input=ADMIN_PASSWORD + "\n")
    return c


@pytest.fixture(scope="module")
def api(cli, server):
    s = requests.Session()
    s.headers["Authorization"] = "Bearer " + json.loads(cli.credentials.read_text())["token"]
    s.base = server.url + "/api/v1/projects/default"
    return s


def people_csv(rows=60, bad=(7, 23)):
    """zip codes with leading zeros, day-first dates, a decimal amount; rows in `bad` have a field too many."""
    lines = ["id,zip,day,amount,plan"]
    for i in range(rows):
        line = f"{i},{i % 7:05d},{(i % 28) + 1:02d}/{(i % 12) + 1:02d}/2024,{i * 2.5},{['free', 'pro'][i % 2]}"
        if i in bad:
            line += ",extra"
        lines.append(line)
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def people_file(tmp_path_factory):
    p = tmp_path_factory.mktemp("data") / "people.csv"
    p.write_text(people_csv())
    return p


@pytest.fixture(scope="module")
def people(cli, people_file):
    """people@1: imported with hints, the two malformed rows quarantined."""
    return cli.json("datasets", "import", str(people_file), "--name", "people", "--hint", "zip=string",
                    "--date-format", "day=%d/%m/%Y", "--bad-rows", "quarantine")


def test_import_with_hints_and_quarantine(cli, people, people_file, tmp_path):
    assert people["name"] == "people" and people["version"] == 1
    assert people["rows"] == 58 and people["bad_rows"] == 2, people
    types = {c["name"]: c["type"] for c in people["columns"]}
    assert types == {"id": "integer", "zip": "string", "day": "datetime", "amount": "float", "plan": "string"}
    rows = cli.json("datasets", "rows", "people@1", "--limit", "2")
    assert rows["rows"][1]["zip"] == "00001" and rows["rows"][1]["day"].startswith("2024-02-02")

    # Human output: the counts and the quarantine hint.
    p = cli.ok("datasets", "import", str(people_file), "--name", "people", "--hint", "zip=string",
               "--date-format", "day=%d/%m/%Y", "--bad-rows", "quarantine", "--max-bad-rows", "10")
    assert "Imported people version 2: 58 rows, 5 columns" in p.stdout, p.stdout
    assert "2 bad rows quarantined" in p.stdout and "lathe datasets quarantine people@2" in p.stdout

    # The quarantined rows, to a file and to stdout.
    out = tmp_path / "bad.jsonl"
    cli.ok("datasets", "quarantine", "people@1", "-o", str(out))
    bad = [json.loads(line) for line in out.read_text().splitlines()]
    assert [b["line"] for b in bad] == [9, 25], bad
    assert all(b["raw"].endswith(",extra") and b["reason"] for b in bad)
    assert cli.ok("datasets", "quarantine", "people@1").stdout == out.read_text()


def test_import_failures_are_clear(cli, people_file, tmp_path):
    # The default policy fails at the first bad row, naming its line; nothing is created.
    p = cli.run("datasets", "import", str(people_file), "--name", "strict")
    assert p.returncode == 1, p
    assert "line 9" in p.stderr, p.stderr
    assert cli.run("datasets", "show", "strict").returncode == 1
    # Bad flags are usage errors before any upload.
    for args, needle in ((["--hint", "zip=decimal"], "unknown type 'decimal'"),
                         (["--bad-rows", "ignore"], "--bad-rows must be one of"),
                         (["--sheet", "S1"], "--sheet applies to XLSX"),
                         (["--max-bad-rows", "3"], "needs --bad-rows")):
        p = cli.run("datasets", "import", str(people_file), "--name", "x", *args)
        assert p.returncode == 2 and needle in p.stderr and "usage: lathe datasets import" in p.stderr, (args, p)
    # Only a version number will do for delete and quarantine.
    p = cli.run("datasets", "delete", "people")
    assert p.returncode == 2 and "NAME@VERSION" in p.stderr


def test_import_no_wait_prints_the_job_id(cli, people_file):
    p = cli.ok("datasets", "import", str(people_file), "--name", "later", "--bad-rows", "skip", "--no-wait")
    job_id = p.stdout.strip()
    assert job_id and "\n" not in job_id and "lathe jobs wait" in p.stderr
    job = cli.json("jobs", "wait", job_id)
    assert job["state"] == "succeeded" and job["result"]["rows"] == 58 and job["result"]["bad_rows"] == 2


def test_import_jsonl_format_from_extension(cli, tmp_path):
    f = tmp_path / "events.ndjson"
    f.write_text("".join(json.dumps({"n": i, "kind": "click" if i % 2 else "view"}) + "\n" for i in range(10)))
    out = cli.json("datasets", "import", str(f), "--name", "events")
    assert out["rows"] == 10 and [c["name"] for c in out["columns"]] == ["n", "kind"]


def test_import_source_from_sqlite_with_progress(cli):
    out = cli.json("datasets", "import-source", "orders", "--source",
                   json.dumps({"kind": "sqlite", "path": "shop.db", "query": "SELECT * FROM orders WHERE id <= 100"}))
    assert out["rows"] == 100 and {c["name"] for c in out["columns"]} == {"id", "city", "amount"}
    assert out["source"]["kind"] == "sqlite"
    # Through a saved connection, human output; progress goes to stderr as plain lines.
    cli.ok("connections", "save", "shop", "--kind", "sqlite", "--path", "shop.db")
    p = cli.ok("datasets", "import-source", "orders", "--connection", "shop", "--query", "SELECT * FROM orders")
    assert "Imported orders version 2: 120 rows, 3 columns" in p.stdout, p.stdout
    assert "succeeded" in p.stderr and "\r" not in p.stderr
    p = cli.run("datasets", "import-source", "orders", "--connection", "shop", "--query", "SELECT * FROM nope")
    assert p.returncode == 1 and "nope" in p.stderr, p
    p = cli.run("datasets", "import-source", "orders")
    assert p.returncode == 2 and "--connection" in p.stderr
    p = cli.run("datasets", "import-source", "orders", "--source", '{"kind":"postgres","dsn":"h","password":"pw"}')
    assert p.returncode == 2 and "password" in p.stderr


def test_profile_table_and_json(cli, people):
    p = cli.ok("datasets", "profile", "people@1")
    lines = p.stdout.splitlines()
    assert lines[0].startswith("people v1: 58 rows, 5 columns"), lines[0]
    assert lines[1].split()[:4] == ["COLUMN", "TYPE", "MISSING", "DISTINCT"]
    body = {line.split()[0]: line for line in lines[2:7]}
    assert set(body) == {"id", "zip", "day", "amount", "plan"}
    assert "integer" in body["id"] and " 0 " in body["id"] and "59" in body["id"]  # min 0, max 59
    prof = cli.json("datasets", "profile", "people", "--target", "plan")
    assert prof["name"] == "people" and prof["target"] == "plan"
    assert {c["name"] for c in prof["columns"]} == {"id", "zip", "day", "amount", "plan"}
    # identifier-like id: a warning a person sees.
    assert "warnings:" in p.stdout or "no warnings" in p.stdout


def test_rows_sort_filter_sample(cli, people):
    rows = cli.json("datasets", "rows", "people@1", "--sort", "-amount", "--limit", "3")
    assert [r["id"] for r in rows["rows"]] == [59, 58, 57]
    rows = cli.json("datasets", "rows", "people@1", "--filter", "plan = 'pro' and id < 10", "--limit", "100")
    assert [r["id"] for r in rows["rows"]] == [1, 3, 5, 9] and rows["total"] == 4  # 7 was quarantined
    a = cli.json("datasets", "rows", "people@1", "--sample", "5", "--seed", "3")
    b = cli.json("datasets", "rows", "people@1", "--sample", "5", "--seed", "3")
    assert len(a["rows"]) == 5 and a["rows"] == b["rows"]
    p = cli.ok("datasets", "rows", "people@1", "--filter", "id >= 50", "--sort", "id")
    assert "matching" in p.stdout.splitlines()[-1]
    p = cli.run("datasets", "rows", "people@1", "--filter", "id >>> 3")
    assert p.returncode == 1 and "error: " in p.stderr
    p = cli.run("datasets", "rows", "people@1", "--seed", "3")
    assert p.returncode == 2 and "--sample" in p.stderr


def test_export_round_trip(cli, people, tmp_path):
    out = tmp_path / "people.csv"
    p = cli.ok("datasets", "export", "people@1", "-o", str(out))
    assert "Exported people@1 as csv" in p.stdout
    exported = list(csv.DictReader(io.StringIO(out.read_text())))
    assert len(exported) == 58 and exported[1]["zip"] == "00001"
    # Re-import the export with the same hints: the same rows come back.
    again = cli.json("datasets", "import", str(out), "--name", "people-again", "--hint", "zip=string")
    assert again["rows"] == 58
    a = cli.json("datasets", "rows", "people@1", "--limit", "100")["rows"]
    b = cli.json("datasets", "rows", "people-again", "--limit", "100")["rows"]
    assert a == b
    # JSON Lines to stdout.
    p = cli.ok("datasets", "export", "people@1", "--format", "jsonl", "-o", "-")
    recs = [json.loads(line) for line in p.stdout.splitlines()]
    assert len(recs) == 58 and recs[0]["plan"] == "free"
    # Format from the -o extension; a missing version leaves no file behind.
    cli.ok("datasets", "export", "people", "-o", str(tmp_path / "p.jsonl"))
    assert json.loads((tmp_path / "p.jsonl").read_text().splitlines()[0])["id"] == 0
    missing = tmp_path / "missing.csv"
    p = cli.run("datasets", "export", "people@99", "-o", str(missing))
    assert p.returncode == 1 and "error: " in p.stderr and not missing.exists()
    assert not list(tmp_path.glob("missing.csv.part-*"))


def test_settings_contract_check_and_delete(cli, people, people_file, tmp_path):
    contract = tmp_path / "contract.json"
    contract.write_text(json.dumps({"columns": {"id": {"not_null": True, "min": 0}, "plan": {"allowed": ["free", "pro"]}}}))
    p = cli.ok("datasets", "settings", "people", "--contract", str(contract), "--target", "plan",
               "--tag", "zip=personal", "--retention-days", "30")
    assert "Saved the settings of people" in p.stdout and "zip=personal" in p.stdout
    s = cli.json("datasets", "settings", "people")
    assert s["target"] == "plan" and s["tags"] == {"zip": "personal"} and s["retention_days"] == 30
    assert s["contract"]["columns"]["plan"]["allowed"] == ["free", "pro"] and s["enforce_contract"] is False
    # A partial change keeps the rest.
    s = cli.json("datasets", "settings", "people", "--enforce")
    assert s["enforce_contract"] is True and s["target"] == "plan" and s["tags"] == {"zip": "personal"}

    p = cli.ok("datasets", "check", "people@1")
    assert p.stdout.startswith("passed"), p.stdout
    strict = tmp_path / "strict.json"
    strict.write_text(json.dumps({"columns": {"id": {"max": 10}}}))
    p = cli.run("datasets", "check", "people@1", "--contract", str(strict))
    assert p.returncode == 1 and p.stdout.startswith("FAILED") and "FAIL" in p.stdout, p
    report = json.loads(cli.run("datasets", "check", "people@1", "--contract", str(strict), "--json").stdout)
    assert report["passed"] is False and report["checks"][0]["failing_rows"] > 0

    # The enforced contract refuses a breaking version.
    breaking = tmp_path / "breaking.csv"
    breaking.write_text("id,zip,day,amount,plan\n1,00001,01/01/2024,1.0,enterprise\n")
    p = cli.run("datasets", "import", str(breaking), "--name", "people", "--hint", "zip=string",
                "--date-format", "day=%d/%m/%Y")
    assert p.returncode == 1 and "contract" in p.stderr, p
    cli.ok("datasets", "settings", "people", "--no-contract")
    assert cli.json("datasets", "settings", "people")["contract"] == {}

    before = [v["version"] for v in cli.json("datasets", "show", "people")["versions"]]
    assert 2 in before
    assert "Deleted people version 2" in cli.ok("datasets", "delete", "people@2").stdout
    after = [v["version"] for v in cli.json("datasets", "show", "people")["versions"]]
    assert 2 not in after and 1 in after
    assert cli.run("datasets", "delete", "people@2").returncode == 1


def test_recipes_preview_save_apply(cli, people, tmp_path):
    steps_list = cli.json("recipes", "steps")["steps"]
    names = {s.get("name", s.get("op")) for s in steps_list}
    assert "drop_columns" in names
    p = cli.ok("recipes", "steps")
    assert p.stdout.splitlines()[0].split()[0] == "STEP" and "drop_columns" in p.stdout
    assert cli.ok("recipes", "steps", "drop_columns").stdout.startswith("drop_columns")

    steps = tmp_path / "steps.json"
    steps.write_text(json.dumps([{"op": "drop_columns", "params": {"columns": ["zip"]}}]))
    prev = cli.json("recipes", "preview", "people@1", "--steps", str(steps), "--limit", "4")
    assert [s["op"] for s in prev["steps"]] == ["drop_columns"]
    assert prev["steps"][0]["rows_in"] == 58 and prev["steps"][0]["rows_out"] == 58
    assert len(prev["rows"]) == 4 and "zip" not in prev["rows"][0]
    p = cli.ok("recipes", "preview", "people@1", "--steps", str(steps), "--limit", "4")
    assert "ROWS IN" in p.stdout and "drop_columns" in p.stdout and "first 4 of 58" in p.stdout

    saved = cli.json("recipes", "save", "no-zip", "--steps", str(steps), "--description", "drop zip codes")
    assert saved["name"] == "no-zip" and saved["version"] == 1
    assert "no-zip" in cli.ok("recipes", "list").stdout
    assert "drop_columns" in cli.ok("recipes", "show", "no-zip").stdout

    p = cli.ok("recipes", "apply", "people@1", "--recipe", "no-zip", "--output", "people-clean")
    assert "Created people-clean version 1: 58 rows, 4 columns" in p.stdout, p.stdout
    assert "(from people@1)" in p.stdout
    v = cli.json("datasets", "show", "people-clean@1")
    assert v["lineage"]["parent"] == {"dataset": "people", "version": 1}
    assert v["lineage"]["recipe"]["name"] == "no-zip"

    queued = cli.json("recipes", "apply", "people@1", "--steps", str(steps), "--output", "people-clean", "--no-wait")
    assert cli.json("jobs", "wait", queued["job"])["state"] == "succeeded"

    bad = tmp_path / "bad.json"
    bad.write_text('[{"op": "drop_columns", "params": {"columns": ["no_such"]}}]')
    p = cli.run("recipes", "preview", "people@1", "--steps", str(bad))
    assert p.returncode == 1 and "no_such" in p.stderr, p
    p = cli.run("recipes", "preview", "people@1")
    assert p.returncode == 2 and "--steps" in p.stderr
    cli.ok("recipes", "delete", "no-zip")
    assert cli.run("recipes", "show", "no-zip").returncode == 1


def test_connections_password_from_stdin_is_never_shown(cli, api):
    secret = "pg-Secret-4711"
    p = cli.ok("connections", "save", "warehouse", "--kind", "postgres", "--dsn", "host=db.internal dbname=shop user=reader",
               "--query", "SELECT 1", "--password-stdin", input=secret + "\n")
    assert "Saved connection warehouse" in p.stdout and "password" in p.stdout and secret not in p.stdout
    cli.ok("connections", "save", "api", "--kind", "http", "--url", "https://example.com/data.json",
           "--header", "Authorization: Bearer tok-998877")
    listed = cli.ok("connections", "list")
    assert "warehouse" in listed.stdout and "api" in listed.stdout
    assert "password (encrypted)" in listed.stdout and "Authorization" in listed.stdout
    for out in (listed.stdout, cli.ok("connections", "list", "--json").stdout,
                cli.ok("connections", "show", "warehouse").stdout, cli.ok("connections", "show", "api", "--json").stdout):
        assert secret not in out and "tok-998877" not in out
    shown = cli.json("connections", "show", "warehouse")
    assert shown["has_password"] is True and shown["dsn"] == "host=db.internal dbname=shop user=reader"
    assert secret not in api.get(api.base + "/connections").text
    # The environment works too; a password in the DSN or on the command line is refused.
    cli.ok("connections", "save", "wh2", "--kind", "postgres", "--dsn", "host=h", LATHE_SOURCE_PASSWORD="x")
    assert cli.json("connections", "show", "wh2")["has_password"] is True
    p = cli.run("connections", "save", "wh3", "--kind", "postgres", "--dsn", "host=h password=x")
    assert p.returncode == 2 and "password" in p.stderr
    p = cli.run("connections", "save", "wh3", "--kind", "postgres", "--dsn", "host=h", "--password", "x")
    assert p.returncode == 2 and "unknown flag --password" in p.stderr
    cli.ok("connections", "delete", "wh2")
    assert cli.run("connections", "show", "wh2").returncode == 1


def test_labeling_round(cli, tmp_path):
    f = tmp_path / "messages.csv"
    f.write_text("text,label\nwin money now,spam\nlunch at noon?,\nfree prize,\nmeeting moved,ham\ncheap pills,\n")
    cli.ok("datasets", "import", str(f), "--name", "messages")
    p = cli.ok("labels", "create", "round1", "--dataset", "messages@1", "--label-column", "label",
               "--labels", "spam,ham")
    assert "Created label queue round1 on messages@1" in p.stdout
    nxt = cli.json("labels", "next", "round1", "--limit", "10")
    assert [r["row"] for r in nxt["rows"]] == [1, 2, 4] and nxt["labels"] == ["spam", "ham"]
    p = cli.ok("labels", "next", "round1")
    assert p.stdout.splitlines()[1].split()[0] == "ROW" or "ROW" in p.stdout
    p = cli.run("labels", "submit", "round1", "1=maybe")
    assert p.returncode == 1 and "labels" in p.stderr
    p = cli.run("labels", "submit", "round1", "one=spam")
    assert p.returncode == 2
    assert "Recorded 3 labels" in cli.ok("labels", "submit", "round1", "1=ham", "2=spam", "4=spam").stdout
    status = cli.json("labels", "status", "round1")
    assert status["rows_done"] == 3 and status["labels_recorded"] == 3
    assert "3 of 3 rows done" in cli.ok("labels", "status", "round1").stdout
    p = cli.ok("labels", "finish", "round1")
    assert "Created messages version 2" in p.stdout, p.stdout
    rows = cli.json("datasets", "rows", "messages@2")["rows"]
    assert [r["label"] for r in rows] == ["spam", "ham", "spam", "ham", "spam"]


def test_help_lists_the_data_commands(cli):
    top = cli.ok("help").stdout
    for cmd in ("datasets import-source", "datasets profile", "datasets export", "recipes apply",
                "connections save", "labels submit"):
        assert "lathe " + cmd in top, cmd
    group = cli.ok("recipes", "--help").stdout
    assert "lathe recipes preview" in group and "lathe datasets" not in group
    one = cli.ok("datasets", "import", "--help").stdout
    for flag in ("--hint COL=TYPE", "--date-format COL=FMT", "--bad-rows POLICY", "--no-wait", "--missing TOKEN"):
        assert flag in one, flag
    save = cli.ok("connections", "save", "--help").stdout
    assert "--password-stdin" in save and "never a flag" in save
