"""Privacy over HTTP: export one person's rows across a dataset's versions, erase them (versions rewritten,
erasure recorded, models trained on the old data listed), and differentially private profiles."""
import csv
import io
import urllib.parse

import pytest

from conftest import Client, assert_problem, login

P = "/api/v1/projects/default"
PASSWORD = "long-enough-password"
ANN = "ann@example.org"


def upload(client, name, text):
    r = client.post(f"{P}/datasets?{urllib.parse.urlencode({'name': name})}", data=text.encode(),
                    headers={"Content-Type": "text/csv"})
    assert r.status_code == 201, r.text
    return r.json()


def people(n, ann_rows, seed):
    """CSV text: n other people plus Ann at the given row positions."""
    lines = ["email,name,x,y"]
    others = iter(range(n))
    for i in range(n + len(ann_rows)):
        if i in ann_rows:
            lines.append(f"{ANN},Ann,{(7 * seed) % 10},1")
        else:
            k = next(others)
            lines.append(f"p{k}-{seed}@example.org,P{k},{(k * 3 + seed) % 17},{k % 2}")
    return "\n".join(lines) + "\n"


def all_rows(client, name, version):
    r = client.get(f"{P}/datasets/{name}/versions/{version}/rows", params={"limit": 10000})
    assert r.status_code == 200, r.text
    return r.json()


@pytest.fixture(scope="module")
def data(client):
    """Dataset 'customers' with Ann in versions 1 (twice), 2 and 3, and a model trained on version 2."""
    upload(client, "customers", people(5, {1, 4}, 1))
    upload(client, "customers", people(60, {10}, 2))
    upload(client, "customers", people(8, {0}, 3))
    run = client.train({"dataset": "customers", "version": 2, "target": "y", "task": "binary",
                        "learner": "xgboost", "params": {"n_estimators": 5}})
    r = client.post(f"{P}/models/churn/versions", json={"run": run["id"]})
    assert r.status_code in (200, 201), r.text
    return {"run": run["id"]}


@pytest.fixture(scope="module")
def users(server, client):
    for name in ("priv-viewer", "priv-outsider"):
        r = client.post("/api/v1/users", json={"username": name, "password": PASSWORD})
        assert r.status_code == 201, r.text
    r = client.request("PUT", f"{P}/members/priv-viewer", json={"role": "viewer"})
    assert r.status_code == 200, r.text
    return {name: Client(server.url, login(server.url, name, PASSWORD)) for name in ("priv-viewer", "priv-outsider")}


def test_export_finds_the_person_in_every_version(client, data):
    r = client.get(f"{P}/datasets/customers/subjects", params={"column": "email", "value": ANN})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["total_matches"] == 4 and out["truncated"] is False
    found = {v["version"]: [row["row"] for row in v["rows"]] for v in out["versions"]}
    assert found == {1: [1, 4], 2: [10], 3: [0]}
    for v in out["versions"]:
        for row in v["rows"]:
            assert row["values"]["email"] == ANN and row["values"]["name"] == "Ann"
            assert set(row["values"]) == {"email", "name", "x", "y"}
    # Case: exact by default, case-insensitive on request; the POST form keeps the value out of the URL.
    upper = {"column": "email", "value": ANN.upper()}
    assert client.get(f"{P}/datasets/customers/subjects", params=upper).json()["total_matches"] == 0
    r = client.post(f"{P}/datasets/customers/subjects", json={**upper, "match": "case_insensitive"})
    assert r.status_code == 200 and r.json()["total_matches"] == 4, r.text
    # Bounded, with a message; one version; as a download.
    r = client.get(f"{P}/datasets/customers/subjects", params={"column": "email", "value": ANN, "limit": 2})
    assert r.json()["returned"] == 2 and r.json()["truncated"] is True and "limit" in r.json()["message"]
    r = client.get(f"{P}/datasets/customers/subjects",
                   params={"column": "email", "value": ANN, "version": 2, "download": "true"})
    assert [v["version"] for v in r.json()["versions"]] == [2]
    assert "attachment" in r.headers["Content-Disposition"]
    # Numbers match by value in an integer column.
    r = client.get(f"{P}/datasets/customers/subjects", params={"column": "x", "value": " 7 "})
    assert r.status_code == 200 and r.json()["total_matches"] >= 1


def test_bad_requests_name_the_field(client, data, users):
    r = client.get(f"{P}/datasets/customers/subjects", params={"column": "mail", "value": ANN})
    assert_problem(r, 400, "column", "mail")
    assert_problem(client.get(f"{P}/datasets/customers/subjects", params={"column": "email"}), 400, "value")
    assert_problem(client.get(f"{P}/datasets/customers/subjects",
                              params={"column": "email", "value": ANN, "match": "fuzzy"}), 400, "match")
    assert_problem(client.post(f"{P}/datasets/customers/erase", json={"column": "mail", "value": ANN}), 400, "mail")
    assert_problem(client.post(f"{P}/datasets/customers/erase", json={"column": "email", "value": ANN,
                                                                       "why": "x"}), 400, "why")
    assert_problem(client.post(f"{P}/datasets/customers/erase", json={"column": "email", "value": [ANN]}), 400,
                   "value")
    assert_problem(client.post(f"{P}/datasets/nope/erase", json={"column": "email", "value": ANN}), 404, "nope")


def test_viewer_cannot_erase_and_outsiders_see_nothing(client, data, users):
    viewer, outsider = users["priv-viewer"], users["priv-outsider"]
    body = {"column": "email", "value": ANN, "reason": "test"}
    assert_problem(viewer.post(f"{P}/datasets/customers/erase", json=body), 403)
    assert viewer.get(f"{P}/datasets/customers/subjects", params={"column": "email", "value": ANN}).status_code == 200
    assert_problem(outsider.post(f"{P}/datasets/customers/erase", json=body), 404, "default")
    assert_problem(outsider.get(f"{P}/datasets/customers/subjects", params={"column": "email", "value": ANN}), 404)
    assert_problem(outsider.get(f"{P}/datasets/customers/erasures"), 404)
    assert client.get(f"{P}/datasets/customers/subjects",
                      params={"column": "email", "value": ANN}).json()["total_matches"] == 4


def test_erase_rewrites_every_version_and_lists_the_model(client, data, users):
    before = {v: all_rows(client, "customers", v) for v in (1, 2, 3)}
    r = client.post(f"{P}/datasets/customers/erase?wait=true",
                    json={"column": "email", "value": ANN, "reason": "GDPR art. 17 request #1"})
    assert r.status_code == 201, r.text
    out = r.json()
    assert out["found"] is True and out["rows_removed"] == 4
    assert {v["version"]: v["rows_removed"] for v in out["versions"]} == {1: 2, 2: 1, 3: 1}
    assert [m["model"] for m in out["models_affected"]] == ["churn@1"]
    assert out["models_affected"][0]["dataset_version"] == 2
    assert data["run"] in [x["run"] for x in out["runs_affected"]]
    assert out["new_version"] == 4
    assert ANN not in r.text  # the value itself is never echoed or recorded
    assert len(out["value_hash"]["hex"]) == 64

    for v in (1, 2, 3, 4):
        page = all_rows(client, "customers", v)
        emails = [row["email"] for row in page["rows"]]
        assert ANN not in emails, v
        old = before[min(v, 3)]
        assert page["total"] == old["total"] - (2 if v == 1 else 1)
        assert [row for row in old["rows"] if row["email"] != ANN] == page["rows"], v
        meta = client.get(f"{P}/datasets/customers/versions/{v}").json()
        assert meta["rows"] == page["total"]
        if v < 4:
            assert meta["erased"] is True and meta["lineage"]["erasures"][0]["erasure"] == out["erasure"]
        csv_text = client.get(f"{P}/datasets/customers/versions/{v}/export", params={"format": "csv"}).text
        assert ANN not in csv_text
        assert len(list(csv.DictReader(io.StringIO(csv_text)))) == page["total"]
        profile = client.get(f"{P}/datasets/customers/versions/{v}/profile").json()
        assert profile["rows"] == page["total"]
        assert ANN not in str(profile)
    latest = client.get(f"{P}/datasets/customers").json()
    assert latest["latest_version"] == 4
    v4 = client.get(f"{P}/datasets/customers/versions/4").json()
    assert v4["source"]["kind"] == "erasure" and v4["lineage"]["parent"] == {"dataset": "customers", "version": 3}

    r = client.get(f"{P}/datasets/customers/subjects", params={"column": "email", "value": ANN})
    assert r.json()["total_matches"] == 0 and r.json()["versions"] == []
    erasures = client.get(f"{P}/datasets/customers/erasures").json()["erasures"]
    assert len(erasures) == 1
    e = erasures[0]
    assert e["erasure"] == out["erasure"] and e["reason"] == "GDPR art. 17 request #1"
    assert e["requested_by"] == "admin" and e["column"] == "email" and e["new_version"] == 4
    assert ANN not in str(erasures)
    # The job's stored payload does not hold the value in clear either.
    assert ANN not in client.get(f"/api/v1/jobs/{out['job']}").text
    # The erasure is in the audit log, under the person who asked for it, without the value.
    audit = client.get("/api/v1/admin/audit", params={"action": "dataset.erase"}).json()["entries"]
    assert len(audit) == 1 and audit[0]["actor"] == "admin" and audit[0]["detail"]["erasure"] == out["erasure"]
    assert audit[0]["detail"]["rows_removed"] > 0 and ANN not in str(audit)


def test_erasing_again_finds_nothing(client, data):
    r = client.post(f"{P}/datasets/customers/erase?wait=true", json={"column": "email", "value": ANN})
    assert r.status_code == 201, r.text
    out = r.json()
    assert out["found"] is False and out["rows_removed"] == 0 and out["versions"] == []
    assert out["new_version"] is None and "nothing to erase" in out["message"]
    assert client.get(f"{P}/datasets/customers").json()["latest_version"] == 4
    assert len(client.get(f"{P}/datasets/customers/erasures").json()["erasures"]) == 2


def test_erase_without_wait_is_a_job(client):
    upload(client, "small", "id,v\n1,a\n2,b\n3,c\n")
    r = client.post(f"{P}/datasets/small/erase", json={"column": "id", "value": 2})
    assert r.status_code == 202, r.text
    job = client.wait_job(r.json()["job"])
    assert job["state"] == "succeeded", job
    assert [row["id"] for row in all_rows(client, "small", 1)["rows"]] == [1, 3]
    assert all_rows(client, "small", 2)["total"] == 2


def test_differentially_private_profile(client):
    text = "city,age,vip\n" + "".join(f"{['Paris', 'Lyon', 'Nice'][i % 3]},{20 + i % 50},{str(i % 4 == 0).lower()}\n"
                                      for i in range(3000))
    upload(client, "census", text)
    exact = client.get(f"{P}/datasets/census/versions/1/profile").json()
    assert "differential_privacy" not in exact
    r = client.get(f"{P}/datasets/census/versions/1/profile", params={"dp_epsilon": "0.5"})
    assert r.status_code == 200, r.text
    dp = r.json()
    meta = dp["differential_privacy"]
    assert meta["epsilon"] == 0.5 and meta["mechanism"] == "laplace" and meta["statistics"] > 2
    assert abs(meta["scale"] - meta["statistics"] / 0.5) < 1e-9
    counts = []
    for c in dp["columns"]:
        for k in ("count", "missing", "distinct"):
            assert isinstance(c[k], int) and c[k] >= 0
            counts.append(c[k])
        for k in ("min", "max", "mean", "std", "quantiles", "histogram"):
            assert k not in c
        for tv in c["top_values"] or []:
            assert tv["count"] >= meta["top_value_threshold"]
    exact_counts = [c[k] for c in exact["columns"] for k in ("count", "missing", "distinct")]
    assert counts != exact_counts
    assert dp["rows"] >= 0 and dp["duplicate_rows"] >= 0
    # Asking again gives the same release (averaging cannot remove the noise).
    assert client.get(f"{P}/datasets/census/versions/1/profile", params={"dp_epsilon": "0.5"}).json() == dp
    for bad in ("0", "-1", "abc", "nan", "inf", "1e9", ""):
        assert_problem(client.get(f"{P}/datasets/census/versions/1/profile", params={"dp_epsilon": bad}), 400,
                       "dp_epsilon")
    # As a dataset setting: every profile of the dataset is private.
    r = client.request("PUT", f"{P}/datasets/census/settings", json={"dp_epsilon": 1.0, "tags": {"city": "personal"}})
    assert r.status_code == 200 and r.json()["dp_epsilon"] == 1.0, r.text
    dp = client.get(f"{P}/datasets/census/versions/1/profile").json()
    assert dp["differential_privacy"]["epsilon"] == 1.0
    city = next(c for c in dp["columns"] if c["name"] == "city")
    assert city["top_values"] is None and "personal" in city["top_values_withheld"]
    assert_problem(client.request("PUT", f"{P}/datasets/census/settings", json={"dp_epsilon": 0}), 400, "dp_epsilon")
    assert_problem(client.request("PUT", f"{P}/datasets/census/settings", json={"dp_epsilon": "1"}), 400, "dp_epsilon")
    r = client.request("PUT", f"{P}/datasets/census/settings", json={"dp_epsilon": None})
    assert r.status_code == 200 and r.json()["dp_epsilon"] is None
    assert "differential_privacy" not in client.get(f"{P}/datasets/census/versions/1/profile").json()


def test_cli_subjects_and_erase(server, client, tmp_path):
    from conftest import ADMIN_PASSWORD
    from test_cli import Cli
    cli = Cli(server.url, tmp_path)
    cli.ok("login", "--password-stdin", input=ADMIN_PASSWORD + "\n")
    upload(client, "cli-people", "email,n\nzoe@example.org,1\nyan@example.org,2\nZoe@example.org,3\n")
    out = cli.json("datasets", "subjects", "cli-people", "--column", "email", "--value", "zoe@example.org",
                   "--match", "case_insensitive")
    assert out["total_matches"] == 2
    text = cli.ok("datasets", "subjects", "cli-people", "--column", "email", "--value", "zoe@example.org").stdout
    assert "1 matching rows" in text and "row 0" in text
    p = cli.run("datasets", "erase", "cli-people", "--column", "mail", "--value", "x")
    assert p.returncode != 0 and "mail" in p.stderr
    text = cli.ok("datasets", "erase", "cli-people", "--column", "email", "--value", "zoe@example.org",
                  "--match", "case_insensitive", "--reason", "cli test").stdout
    assert "erased 2 rows from 1 versions" in text and "new latest version 2" in text
    assert [r["email"] for r in all_rows(client, "cli-people", 1)["rows"]] == ["yan@example.org"]
