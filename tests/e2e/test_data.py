"""Data over real HTTP: every upload format, hints and bad-row policies, profiles, browsing, export, contracts,
retention, guarded deletion, recipes with lineage, and labeling."""
import csv
import io
import json
import urllib.parse

import pytest

from conftest import assert_problem

P = "/api/v1/projects/default"


def upload(client, name, data, ctype="text/csv", **params):
    q = urllib.parse.urlencode({"name": name, **params})
    return client.post(f"{P}/datasets?{q}", data=data if isinstance(data, bytes) else data.encode(),
                       headers={"Content-Type": ctype})


def imported(client, name, data, ctype="text/csv", **params):
    r = upload(client, name, data, ctype, **params)
    assert r.status_code == 201, r.text
    return r.json()


def rows(client, name, version="latest", **params):
    r = client.get(f"{P}/datasets/{name}/versions/{version}/rows", params=params)
    assert r.status_code == 200, r.text
    return r.json()


SALES = ("id,region,amount,when,email\n"
         "1,north,10.5,2024-01-02,ann@example.com\n"
         "2,south,3.25,2024-01-03,bob@example.com\n"
         "3,north,,2024-01-04,cy@example.org\n"
         "4,east,7,2024-01-05,dee@example.net\n"
         "4,east,7,2024-01-05,dee@example.net\n")


def test_upload_is_a_job_with_a_profile_and_source(client):
    v = imported(client, "sales", SALES)
    assert v["version"] == 1 and v["rows"] == 5
    assert [c["type"] for c in v["columns"]] == ["integer", "string", "float", "datetime", "string"]
    job = client.get(f"/api/v1/jobs/{v['job']}").json()
    assert job["kind"] == "import" and job["state"] == "succeeded"
    prof = client.get(f"{P}/datasets/sales/versions/1/profile").json()
    assert prof["rows"] == 5 and prof["duplicate_rows"] == 1
    amount = next(c for c in prof["columns"] if c["name"] == "amount")
    assert amount["missing"] == 1 and amount["min"] == 3.25 and amount["max"] == 10.5
    email = next(c for c in prof["columns"] if c["name"] == "email")
    assert "email" in email["semantic_kinds"]
    assert any(w["kind"] == "duplicate_rows" for w in prof["warnings"])


def test_async_upload_returns_the_job(client):
    r = upload(client, "later", SALES, wait="false")
    assert r.status_code == 202, r.text
    job = client.wait_job(r.json()["job"])
    assert job["state"] == "succeeded", job
    assert job["result"]["version"] == 1


def test_hints_force_types_dates_and_decimal_comma(client):
    text = "code;price;day\n007;1.234,5;31/01/2024\n010;3,14;01/02/2024\n"
    hints = {"types": {"code": "string"}, "date_formats": {"day": "%d/%m/%Y"}, "decimal_comma": True}
    v = imported(client, "hinted", text, delimiter=";", hints=json.dumps(hints))
    types = {c["name"]: c["type"] for c in v["columns"]}
    assert types == {"code": "string", "price": "float", "day": "datetime"}
    got = rows(client, "hinted")["rows"]
    assert got[0]["code"] == "007" and got[0]["price"] == 1234.5 and got[1]["price"] == 3.14
    assert got[0]["day"].startswith("2024-01-31")


def test_bad_rows_fail_skip_and_quarantine(client):
    text = "a,b\n1,2\n3\n4,5\n6,7,8\n"
    r = upload(client, "bad", text)
    body = assert_problem(r, 400, "line 3")
    assert any(e.get("line") == 3 for e in body["errors"])
    assert client.get(f"{P}/datasets/bad").status_code == 404  # nothing half-written
    v = imported(client, "bad", text, bad_rows="skip")
    assert v["rows"] == 2 and v["bad_rows"] == 2
    assert client.get(f"{P}/datasets/bad/versions/1/quarantine").status_code == 404
    v = imported(client, "bad", text, bad_rows="quarantine")
    q = client.get(f"{P}/datasets/bad/versions/{v['version']}/quarantine")
    assert q.status_code == 200
    lines = [json.loads(line) for line in q.text.splitlines()]
    assert [x["line"] for x in lines] == [3, 5]
    assert lines[0]["raw"] == "3" and lines[0]["reason"]


def test_jsonl_json_and_xlsx_uploads(client, tmp_path):
    jsonl = '{"id": 1, "user": {"name": "ann", "age": 31}, "tags": ["a", "b"]}\n{"id": 2, "user": {"name": "bob"}}\n'
    v = imported(client, "events", jsonl, "application/x-ndjson")
    assert [c["name"] for c in v["columns"]] == ["id", "user.name", "user.age", "tags"]
    got = rows(client, "events")["rows"]
    assert got[1]["user.age"] is None and got[0]["tags"] == '["a","b"]'
    arr = json.dumps([{"x": 1.5, "ok": True}, {"x": 2, "ok": False}])
    v = imported(client, "arr", arr, "application/json")
    assert {c["name"]: c["type"] for c in v["columns"]} == {"x": "float", "ok": "boolean"}

    openpyxl = pytest.importorskip("openpyxl")
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "First"
    ws.append(["ignored"])
    other = wb.create_sheet("Data")
    other.append(["name", "score"])
    other.append(["ann", 3])
    other.append(["bob", 4.5])
    path = tmp_path / "book.xlsx"
    wb.save(path)
    ctype = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    v = imported(client, "book", path.read_bytes(), ctype, sheet="Data")
    assert v["rows"] == 2 and v["columns"][1]["type"] == "float"
    r = upload(client, "book", path.read_bytes(), ctype, sheet="Nope")
    assert_problem(r, 400, "Data")  # the error lists the sheets there are


def test_unknown_options_and_broken_files_are_4xx(client):
    assert_problem(upload(client, "x", "a\n1\n", format="parquet"), 400, "format")
    assert_problem(upload(client, "x", "a\n1\n", bad_rows="ignore"), 400, "bad_rows")
    assert_problem(upload(client, "x", "a\n1\n", hints="{not json"), 400, "hints")
    assert_problem(upload(client, "x", "a\n1\n", hints='{"types": {"zz": "integer"}}'), 400, "zz")
    assert_problem(upload(client, "x", b'{"a": 1}\n{"a": \n', "application/x-ndjson"), 400, "line 2")
    assert_problem(upload(client, "x", b"PK\x03\x04garbage", format="xlsx"), 400)
    assert client.get(f"{P}/datasets/x").status_code == 404


def test_browse_sort_filter_sample(client):
    got = rows(client, "sales", sort="-amount,id", limit=3)["rows"]
    assert [r["amount"] for r in got] == [10.5, 7, 7]
    got = rows(client, "sales", filter="region = 'north' and amount > 5")
    assert got["total"] == 1 and got["rows"][0]["id"] == 1
    r = client.get(f"{P}/datasets/sales/versions/1/rows", params={"filter": "amount >> 2"})
    body = assert_problem(r, 400, "filter")
    assert any("position" in e for e in body["errors"])
    r = client.get(f"{P}/datasets/sales/versions/1/rows", params={"filter": "nope = 1"})
    assert_problem(r, 400, "nope")
    s1 = rows(client, "sales", sample=3, seed=7)
    s2 = rows(client, "sales", sample=3, seed=7)
    assert s1["total"] == 3 and s1["rows"] == s2["rows"]
    assert_problem(client.get(f"{P}/datasets/sales/versions/1/rows", params={"sort": "ghost"}), 400, "ghost")


def test_export_csv_and_jsonl_round_trip(client):
    r = client.get(f"{P}/datasets/sales/versions/1/export", params={"format": "csv"})
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/csv")
    assert "attachment" in r.headers["Content-Disposition"]
    back = list(csv.DictReader(io.StringIO(r.text)))
    assert len(back) == 5 and back[2]["amount"] == "" and back[0]["region"] == "north"
    v = imported(client, "sales-copy", r.text)
    assert [c["type"] for c in v["columns"]] == ["integer", "string", "float", "datetime", "string"]
    r = client.get(f"{P}/datasets/sales/versions/1/export", params={"format": "jsonl"})
    recs = [json.loads(x) for x in r.text.splitlines()]
    assert recs[2]["amount"] is None and recs[0]["id"] == 1
    assert_problem(client.get(f"{P}/datasets/sales/versions/1/export", params={"format": "xml"}), 400, "format")


def test_contract_flags_then_refuses_a_breaking_version(client):
    imported(client, "people", "id,age\n1,30\n2,40\n")
    contract = {"columns": {"age": {"not_null": True, "min": 0, "max": 120}, "id": {"unique": True}},
                "rows": {"min": 1}}
    r = client.request("PUT", f"{P}/datasets/people/settings", json={"contract": contract, "target": "age",
                                                                     "tags": {"id": "personal"}})
    assert r.status_code == 200, r.text
    v = imported(client, "people", "id,age\n1,30\n1,-5\n")
    assert v["quality"]["passed"] is False
    detail = client.get(f"{P}/datasets/people/versions/{v['version']}").json()
    failed = set(detail["quality"]["failed"])
    assert failed == {"age.min", "id.unique"}
    r = client.request("PUT", f"{P}/datasets/people/settings", json={"contract": contract, "enforce_contract": True})
    assert r.status_code == 200
    r = upload(client, "people", "id,age\n5,500\n")
    assert_problem(r, 409, "contract", "age")
    assert client.get(f"{P}/datasets/people").json()["latest_version"] == 2
    report = client.post(f"{P}/datasets/people/versions/1/check").json()
    assert report["passed"] is True
    bad = client.request("PUT", f"{P}/datasets/people/settings", json={"contract": {"columns": {"age": {"min": "x"}}}})
    assert_problem(bad, 400, "contract.columns.age.min")
    bad = client.request("PUT", f"{P}/datasets/people/settings", json={"tags": {"ghost": "personal"}})
    assert_problem(bad, 400, "ghost")


def test_recipe_preview_apply_lineage_and_saved_recipes(client):
    steps = [
        {"op": "dedupe", "params": {}},
        {"op": "impute", "params": {"columns": ["amount"], "strategy": "mean"}},
        {"op": "filter_rows", "params": {"expr": "amount > 5"}},
        {"op": "mask_pii", "params": {"columns": ["email"], "kind": "email", "method": "redact"}},
    ]
    r = client.post(f"{P}/datasets/sales/versions/1/preview", json={"steps": steps, "limit": 2})
    assert r.status_code == 200, r.text
    pv = r.json()
    assert [s["rows_out"] for s in pv["steps"]] == [4, 4, 3, 3]
    assert len(pv["rows"]) == 2 and "ann@example.com" not in json.dumps(pv["rows"])
    bad = client.post(f"{P}/datasets/sales/versions/1/preview",
                      json={"steps": [{"op": "impute", "params": {"columns": ["ghost"], "strategy": "mean"}}]})
    assert_problem(bad, 400, "steps[0]", "ghost")
    bad = client.post(f"{P}/datasets/sales/versions/1/preview", json={"steps": [{"op": "explode", "params": {}}]})
    assert_problem(bad, 400, "explode")

    saved = client.post(f"{P}/recipes", json={"name": "clean-sales", "steps": steps})
    assert saved.status_code == 201 and saved.json()["version"] == 1
    r = client.post(f"{P}/datasets/sales/versions/1/apply?wait=true", json={"recipe": "clean-sales", "output": "sales-clean"})
    assert r.status_code == 201, r.text
    out = r.json()
    assert out["name"] == "sales-clean" and out["rows"] == 3
    assert out["lineage"]["parent"] == {"dataset": "sales", "version": 1}
    assert out["lineage"]["recipe"]["name"] == "clean-sales"
    assert "fitted" in out["lineage"]["recipe"]
    assert client.get(f"{P}/recipes").json()["recipes"][0]["name"] == "clean-sales"
    steps_schema = client.get("/api/v1/recipe-steps").json()["steps"]
    ops = {s["op"] for s in steps_schema}
    assert {"impute", "one_hot", "mask_pii", "derive", "filter_rows", "dedupe"} <= ops
    assert all("params" in s for s in steps_schema)


def test_delete_is_guarded_by_registered_models_and_retention_keeps_latest(client):
    imported(client, "train-me", "x,y\n" + "".join(f"{i},{i % 2}\n" for i in range(60)))
    imported(client, "train-me", "x,y\n" + "".join(f"{i},{(i + 1) % 2}\n" for i in range(60)))
    run = client.post(f"{P}/runs", json={"dataset": "train-me", "version": 1, "target": "y", "task": "binary",
                                         "learner": "xgboost", "params": {"n_estimators": 5}}).json()
    assert client.wait_job(run["job"])["state"] == "succeeded"
    assert client.post(f"{P}/models/guard/versions", json={"run": run["run"]}).status_code in (200, 201)
    r = client.delete(f"{P}/datasets/train-me/versions/1")
    assert_problem(r, 409, "guard@1")
    assert client.delete(f"{P}/datasets/train-me/versions/2").status_code == 204
    assert client.get(f"{P}/datasets/train-me/versions/2").status_code == 404
    r = client.request("PUT", f"{P}/datasets/train-me/settings", json={"retention_days": 1})
    assert r.status_code == 200
    out = client.post(f"{P}/datasets/train-me/retention").json()
    assert out["deleted"] == []  # version 1 is the latest and is referenced


def test_labeling_round_makes_a_new_version(client):
    imported(client, "msgs", "text,label\nbuy now,spam\nhello mum,\nfree money,\nlunch?,\n")
    r = client.post(f"{P}/label-queues", json={"name": "round1", "dataset": "msgs", "label_column": "label",
                                               "labels": ["spam", "ham"], "labels_per_row": 1})
    assert r.status_code == 201, r.text
    nxt = client.get(f"{P}/label-queues/round1/next", params={"limit": 10}).json()["rows"]
    assert [x["row"] for x in nxt] == [1, 2, 3]
    assert nxt[0]["values"]["text"] == "hello mum"
    bad = client.post(f"{P}/label-queues/round1/labels", json={"labels": [{"row": 0, "label": "ham"}]})
    assert_problem(bad, 400, "labels[0].row")
    bad = client.post(f"{P}/label-queues/round1/labels", json={"labels": [{"row": 1, "label": "maybe"}]})
    assert_problem(bad, 400, "labels[0].label")
    r = client.post(f"{P}/label-queues/round1/labels",
                    json={"labels": [{"row": 1, "label": "ham"}, {"row": 2, "label": "spam"}, {"row": 3, "label": "ham"}]})
    assert r.status_code == 200 and r.json()["recorded"] == 3
    q = client.get(f"{P}/label-queues/round1").json()
    assert q["rows_done"] == 3 and q["labelers"][0]["user"] == "admin"
    labels = client.get(f"{P}/label-queues/round1/labels").json()["labels"]
    assert labels[0]["labeler"] == "admin" and labels[0]["labeled_at"]
    r = client.post(f"{P}/label-queues/round1/finish")
    assert r.status_code == 201, r.text
    v = r.json()
    assert v["version"] == 2 and v["lineage"]["labeling"]["queue"] == "round1"
    got = rows(client, "msgs", 2)["rows"]
    assert [x["label"] for x in got] == ["spam", "ham", "spam", "ham"]


def test_model_trained_on_a_recipe_output_serves_raw_input_identically(client):
    """Training/serving consistency: a model trained on recipe output takes RAW rows and replays the recipe.
    Its predictions must equal those of a twin model trained on the same transformed table re-imported
    without lineage (so it expects already-transformed input)."""
    import random
    rnd = random.Random(5)
    lines = ["age,income,city,joined,label"]
    for i in range(300):
        age = "" if i % 17 == 0 else str(rnd.randint(18, 80))
        income = f"{rnd.uniform(1000, 9000):.2f}"
        city = rnd.choice(["paris", "lyon", "nice", "lille"])
        label = int((int(age or 40) > 45) ^ (city == "nice"))
        lines.append(f"{age},{income},{city},2024-0{1 + i % 9}-1{i % 10},{label}")
    imported(client, "raw", "\n".join(lines) + "\n")
    steps = [
        {"op": "impute", "params": {"columns": ["age"], "strategy": "mean"}},
        {"op": "scale_zscore", "params": {"columns": ["income"]}},
        {"op": "one_hot", "params": {"columns": ["city"]}},
        {"op": "date_parts", "params": {"column": "joined", "parts": ["month", "weekday"]}},
        {"op": "derive", "params": {"name": "age_income", "expr": "age * income"}},
    ]
    r = client.post(f"{P}/datasets/raw/versions/1/apply?wait=true", json={"steps": steps, "output": "prepared"})
    assert r.status_code == 201, r.text
    exported = client.get(f"{P}/datasets/prepared/versions/1/export", params={"format": "jsonl"}).text
    prepared_rows = [json.loads(x) for x in exported.splitlines()]
    imported(client, "prepared-copy", exported, "application/x-ndjson")

    def train_and_deploy(dataset, name):
        run = client.post(f"{P}/runs", json={"dataset": dataset, "target": "label", "task": "binary",
                                             "learner": "xgboost", "params": {"n_estimators": 20, "max_depth": 3},
                                             "split": {"test_fraction": 0.2, "seed": 3}}).json()
        assert client.wait_job(run["job"])["state"] == "succeeded"
        assert client.post(f"{P}/models/{name}/versions", json={"run": run["run"]}).status_code in (200, 201)
        r = client.post(f"{P}/deployments", json={"name": name, "model": name, "version": 1})
        assert r.status_code in (200, 201), r.text

    train_and_deploy("prepared", "with-recipe")
    train_and_deploy("prepared-copy", "twin")
    raw_rows = []
    for line in lines[1:]:
        age, income, city, joined, _ = line.split(",")
        raw_rows.append({"age": int(age) if age else None, "income": float(income), "city": city, "joined": joined})
    a = client.post(f"{P}/deployments/with-recipe/predict", json={"instances": raw_rows[:50]})
    assert a.status_code == 200, a.text
    twin_rows = [{k: v for k, v in row.items() if k != "label"} for row in prepared_rows[:50]]
    b = client.post(f"{P}/deployments/twin/predict", json={"instances": twin_rows})
    assert b.status_code == 200, b.text
    assert a.json()["predictions"] == pytest.approx(b.json()["predictions"], abs=1e-6)
    # The model asks for the raw columns, not the transformed ones.
    sig = client.get(f"{P}/models/with-recipe/versions/1").json()["signature"]
    assert sorted(i["name"] for i in sig["inputs"]) == ["age", "city", "income", "joined"]
    bad = client.post(f"{P}/deployments/with-recipe/predict", json={"instances": [{"age": "old"}]})
    assert_problem(bad, 400, "instances[0].age")
