"""Bad input over real HTTP: every case is a clear 4xx problem+json, the server stays up, nothing is
half-written."""
import json
import socket
import time

import pytest

from conftest import Client, Server, assert_problem, login
from datagen import churn_csv

P = "/api/v1/projects/default"


def upload(client, name, body, ctype="text/csv", query=""):
    return client.post(f"{P}/datasets?name={name}{query}", data=body, headers={"Content-Type": ctype})


def versions_of(client, name):
    r = client.get(f"{P}/datasets/{name}")
    return [] if r.status_code == 404 else [v["version"] for v in r.json()["versions"]]


@pytest.mark.parametrize("body,needle,query", [
    (b"", "empty", ""),
    (b"a,b,c\n1,2,3\n4,5\n", "line 3", ""),
    (b'a,b\n1,"unclosed\n2,3\n', "quote", ""),
    # Undeclared, these bytes are read as Latin-1; declared UTF-8 they are an error naming the line.
    (b"a,b\n1,\xff\xfe\n", "utf-8", "&encoding=utf-8"),
    (b"a,b\n1,\xff\xfe\n", "line 2", "&encoding=utf-8"),
    (b"a,a,b\n1,2,3\n", "duplicate", ""),
    (b"a,,b\n1,2,3\n", "empty", ""),
    (b"a,b,c\n", "no data rows", ""),
])
def test_bad_csv_is_rejected_and_writes_nothing(client, body, needle, query):
    r = upload(client, "bad", body, query=query)
    problem = assert_problem(r, 400)
    assert needle.lower() in json.dumps(problem).lower(), problem
    assert versions_of(client, "bad") == []


def test_bad_csv_names_the_line(client):
    r = upload(client, "ragged", b"a,b,c\n1,2,3\n4,5,6\n7,8\n")
    problem = assert_problem(r, 400, "line 4")
    assert any(e.get("line") == 4 for e in problem.get("errors", [])), problem


def test_failed_import_after_a_good_one_keeps_the_good_version(client):
    assert upload(client, "keep", b"a,b\n1,2\n").status_code == 201
    assert_problem(upload(client, "keep", b"a,b\n1,2\n3\n"), 400)
    assert versions_of(client, "keep") == [1]


def test_bad_dataset_name_and_format(client):
    assert_problem(upload(client, "../etc", b"a\n1\n"), 400, "name")
    assert_problem(client.post(f"{P}/datasets", data=b"a\n1\n"), 400, "name")
    assert_problem(client.post(f"{P}/datasets?name=x&format=parquet", data=b"a\n1\n"), 400, "format")


@pytest.fixture(scope="module")
def trained(client):
    assert upload(client, "churn", churn_csv(rows=200).encode()).status_code == 201
    r = client.post(f"{P}/runs", json={"dataset": "churn", "target": "churned", "task": "binary",
                                       "params": {"n_estimators": 10}})
    assert r.status_code == 202, r.text
    assert client.wait_job(r.json()["job"])["state"] == "succeeded"
    run = r.json()["run"]
    assert client.post(f"{P}/models/m/versions", json={"run": run}).status_code == 201
    assert client.post(f"{P}/deployments", json={"name": "d", "model": "m"}).status_code == 201
    return run


def test_training_request_errors(client, trained):
    base = {"dataset": "churn", "target": "churned", "task": "binary"}
    assert_problem(client.post(f"{P}/runs", json={**base, "target": "nope"}), 400, "target")
    assert_problem(client.post(f"{P}/runs", json={**base, "dataset": "ghost"}), 404, "ghost")
    assert_problem(client.post(f"{P}/runs", json={**base, "task": "clustering"}), 400, "task")
    assert_problem(client.post(f"{P}/runs", json={**base, "version": 99}), 404, "version")
    assert_problem(client.post(f"{P}/runs", json={"dataset": "churn"}), 400, "target")
    assert_problem(client.post(f"{P}/runs", json={**base, "split": {"test_fraction": 2}}), 400, "test_fraction")
    assert_problem(client.post(f"{P}/runs", json={**base, "params": {"max_depth": "deep"}}), 400, "max_depth")
    assert_problem(client.post(f"{P}/runs", json={**base, "params": {"no_such_param": 1}}), 400, "no_such_param")
    assert_problem(client.post(f"{P}/runs", data=b"{nope", headers={"Content-Type": "application/json"}), 400, "json")


def test_one_class_target_is_refused(client):
    assert upload(client, "oneclass", b"x,y\n1,1\n2,1\n3,1\n4,1\n").status_code == 201
    r = client.post(f"{P}/runs", json={"dataset": "oneclass", "target": "y", "task": "binary"})
    if r.status_code == 202:  # refused by the job instead of up front: the run must fail clearly
        job = client.wait_job(r.json()["job"])
        assert job["state"] == "failed" and "class" in job["error"], job
    else:
        assert_problem(r, 400, "one class")


def test_predict_bad_bodies(client, trained):
    url = f"{P}/deployments/d/predict"
    good = {"age": 30, "income": 1000.0, "plan": "pro", "signup": "2024-01-01", "visits": 3}
    assert client.post(url, json={"instances": [good]}).status_code == 200
    assert_problem(client.post(url, data=b"not json", headers={"Content-Type": "application/json"}), 400)
    deep = "[" * 10000 + "]" * 10000
    assert_problem(client.post(url, data=deep, headers={"Content-Type": "application/json"}), 400, "nested")
    assert_problem(client.post(url, data=b"x" * (17 << 20), headers={"Content-Type": "application/json"}), 413)
    missing = dict(good)
    del missing["age"]
    assert_problem(client.post(url, json={"instances": [good, missing]}), 400, "age")
    assert_problem(client.post(url, json={"instances": [{**good, "shoe_size": 44}]}), 400, "shoe_size")
    assert_problem(client.post(url, json={"instances": [{**good, "age": "old"}]}), 400, "age")
    assert_problem(client.post(url, json={"instances": [{**good, "age": {"a": 1}}]}), 400, "age")
    assert_problem(client.post(url, json={"instances": []}), 400, "instances")
    assert_problem(client.post(url, json={"rows": [good]}), 400, "instances")
    assert_problem(client.post(url, json={"instances": "x"}), 400, "instances")
    # The server is still fine afterwards.
    assert client.post(url, json={"instances": [good]}).status_code == 200


def test_unknown_resources_are_404(client):
    assert_problem(client.get(f"{P}/datasets/ghost"), 404, "ghost")
    assert_problem(client.get(f"{P}/datasets/ghost/versions/1/rows"), 404)
    assert_problem(client.get(f"{P}/runs/run_0000000000000000"), 404)
    assert_problem(client.get(f"{P}/models/ghost"), 404)
    assert_problem(client.get(f"{P}/deployments/ghost"), 404)
    assert_problem(client.post(f"{P}/deployments/ghost/predict", json={"instances": [{}]}), 404)
    assert_problem(client.get("/api/v1/jobs/job_0000000000000000"), 404)
    assert_problem(client.get("/api/v1/projects/nope/datasets"), 404, "project")
    assert_problem(client.post(f"{P}/models/m/versions", json={"run": "run_0000000000000000"}), 404)
    assert_problem(client.post(f"{P}/deployments", json={"name": "x", "model": "ghost"}), 404)
    assert_problem(client.get("/no/such/route"), 404)
    assert_problem(client.delete("/healthz"), 405)


def test_auth_errors(server, anon):
    assert_problem(anon.get(f"{P}/datasets"), 401)
    assert_problem(Client(server.url, "lt_forged").get(f"{P}/datasets"), 401)
    r = anon.get(f"{P}/datasets", headers={"Authorization": "Basic YWRtaW46eA=="})
    assert_problem(r, 401)
    assert_problem(anon.post("/api/v1/auth/login", json={"username": "admin", "password": "wrong"}), 401)
    assert_problem(anon.post("/api/v1/auth/login", json={"username": "admin"}), 400, "password")
    assert_problem(anon.get("/api/v1/openapi.json"), 401)


def test_expired_token(tmp_path):
    s = Server(tmp_path, ["--token-ttl-s", "1"]).start()
    try:
        c = Client(s.url, login(s.url))
        assert c.get(f"{P}/datasets").status_code == 200
        time.sleep(1.5)
        assert_problem(c.get(f"{P}/datasets"), 401, "expired")
    finally:
        s.stop()


def raw_request(url, payload, timeout=10):
    host, port = url.replace("http://", "").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(payload)
        data = b""
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
                if b"\r\n\r\n" in data:
                    head, _, rest = data.partition(b"\r\n\r\n")
                    for line in head.split(b"\r\n"):
                        if line.lower().startswith(b"content-length:"):
                            if len(rest) >= int(line.split(b":")[1]):
                                return data
        except socket.timeout:
            pass
        return data


def test_protocol_limits(tmp_path):
    s = Server(tmp_path, ["--header-read-timeout-ms", "500"]).start()
    try:
        big = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70000 + b"\r\n\r\n"
        assert b" 431 " in raw_request(s.url, big).split(b"\r\n")[0]
        assert b" 400 " in raw_request(s.url, b"NONSENSE\r\n\r\n").split(b"\r\n")[0]
        t = time.time()
        slow = raw_request(s.url, b"GET /healthz HTTP/1.1\r\nHost: x\r\n", timeout=10)
        assert time.time() - t < 8
        assert slow == b"" or b" 408 " in slow.split(b"\r\n")[0]
        assert Client(s.url).get("/healthz").status_code == 200
    finally:
        s.stop()


def test_one_class_boolean_target_is_refused(client):
    assert upload(client, "oneclassbool", b"x,y\n1,true\n2,true\n3,\n").status_code == 201
    r = client.post(f"{P}/runs", json={"dataset": "oneclassbool", "target": "y", "task": "binary"})
    assert_problem(r, 400, "one class")


def test_security_headers_on_every_response(server, client):
    import requests
    responses = [requests.get(server.url + "/healthz", timeout=10),
                 requests.get(server.url + "/api/v1/projects/default/datasets", timeout=10),  # 401, no token
                 client.get("/api/v1/projects/default/datasets/no-such-dataset")]             # 404 problem
    assert [r.status_code for r in responses] == [200, 401, 404]
    for r in responses:
        assert r.headers["Content-Security-Policy"] == "default-src 'none'; frame-ancestors 'none'"
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        assert r.headers["X-Frame-Options"] == "DENY"
        assert r.headers["Referrer-Policy"] == "no-referrer"
