"""Learning to rank over real HTTP: XGBoost's LambdaMART (rank:ndcg, rank:pairwise) with a query column, split
by whole queries, measured by NDCG and MAP, served as scores and exported to ONNX."""
import json
import math
import random
import shutil
import subprocess
from pathlib import Path

from conftest import assert_problem

P = "/api/v1/projects/default"
RUNNER = Path(__file__).resolve().parents[2] / "tests" / "onnx" / "run.js"
SOURCES = ["news", "blog", "forum", "docs"]


def documents(queries, seed):
    """Each query has 12 candidate documents; relevance (0-3) rises with `match` and `fresh`, falls with
    `spam`, and `docs` pages get a bonus. `noise` is unrelated."""
    rnd = random.Random(seed)
    rows = []
    for q in range(queries):
        for _ in range(12):
            match, fresh, spam = rnd.random(), rnd.random(), rnd.random()
            source = rnd.choice(SOURCES)
            utility = 3 * match + fresh - 2 * spam + (0.8 if source == "docs" else 0) + rnd.gauss(0, 0.3)
            rel = max(0, min(3, int(utility)))
            rows.append({"qid": f"q{q}", "match": round(match, 4), "fresh": round(fresh, 4), "spam": round(spam, 4),
                         "source": source, "noise": round(rnd.random(), 4), "rel": rel})
    return rows


def upload(client, name, rows):
    cols = list(rows[0])
    body = "\n".join([",".join(cols)] + [",".join(str(r[c]) for c in cols) for r in rows]) + "\n"
    r = client.post(f"{P}/datasets?name={name}", data=body.encode(), headers={"Content-Type": "text/csv"})
    assert r.status_code == 201, r.text


def ndcg_at(rels_in_order, k=10):
    gain = lambda r: 2 ** r - 1
    dcg = sum(gain(r) / math.log2(i + 2) for i, r in enumerate(rels_in_order[:k]))
    ideal = sorted(rels_in_order, reverse=True)
    idcg = sum(gain(r) / math.log2(i + 2) for i, r in enumerate(ideal[:k]))
    return dcg / idcg if idcg > 0 else None


def test_rank_documents(client, tmp_path):
    upload(client, "search", documents(120, seed=1))
    run = client.train({"dataset": "search", "target": "rel", "task": "ranking",
                         "params": {"query_column": "qid", "n_estimators": 60, "max_depth": 4}})
    m = run["metrics"]
    assert m["split"]["method"] == "holdout" and m["split"]["queries"] == 120
    assert m["queries"] == 24 and m["rows"] == 24 * 12  # whole queries held out (1/5 of them)
    assert m["ndcg_at_10"] > 0.85 and m["map"] > 0.8, m
    assert run["curves"]["learning"]["metric"] == "ndcg@10"
    assert len(run["curves"]["learning"]["valid"]) == 60
    # lathe's NDCG@10 is XGBoost's: the last round of XGBoost's own evaluation on the held-out queries.
    assert abs(run["curves"]["learning"]["valid"][-1] - m["ndcg_at_10"]) < 1e-6
    assert run["curves"]["ndcg_at_k"]["k"][:3] == [1, 2, 3]
    # The query column is not a feature; the noise column matters least.
    inputs = [i["name"] for i in run["signature"]["inputs"]]
    assert "qid" not in inputs and "rel" not in inputs
    gain = run["explanations"]["gain"]
    assert gain["match"] > gain["noise"] and gain["spam"] > gain["noise"]

    # Served scores order a fresh query's documents well.
    r = client.post(f"{P}/models/ranker/versions", json={"run": run["id"]})
    assert r.status_code == 201, r.text
    assert client.post(f"{P}/deployments", json={"name": "ranker", "model": "ranker"}).status_code in (200, 201)
    fresh = documents(30, seed=77)
    scores_ndcg, random_ndcg = [], []
    rnd = random.Random(3)
    for q in range(30):
        docs = fresh[q * 12:(q + 1) * 12]
        inst = [{k: d[k] for k in ("match", "fresh", "spam", "source", "noise")} for d in docs]
        r = client.post(f"{P}/deployments/ranker/predict", json={"instances": inst})
        assert r.status_code == 200, r.text
        scores = r.json()["predictions"]
        assert all(isinstance(s, float) for s in scores)
        ranked = [d["rel"] for _, d in sorted(zip(scores, docs), key=lambda t: -t[0])]
        shuffled = [d["rel"] for d in docs]
        rnd.shuffle(shuffled)
        if ndcg_at(ranked) is not None:
            scores_ndcg.append(ndcg_at(ranked))
            random_ndcg.append(ndcg_at(shuffled))
    assert sum(scores_ndcg) / len(scores_ndcg) > sum(random_ndcg) / len(random_ndcg) + 0.2

    # The same scores from the ONNX file in ONNX Runtime.
    if shutil.which("node") and (RUNNER.parent / "node_modules").is_dir():
        onnx = client.get(f"{P}/models/ranker/versions/1/onnx")
        assert onnx.status_code == 200, onnx.text
        path = tmp_path / "ranker.onnx"
        path.write_bytes(onnx.content)
        docs = fresh[:24]
        feeds = {"match": {"type": "float64", "data": [d["match"] for d in docs]},
                 "fresh": {"type": "float64", "data": [d["fresh"] for d in docs]},
                 "spam": {"type": "float64", "data": [d["spam"] for d in docs]},
                 "source": {"type": "string", "data": [d["source"] for d in docs]},
                 "noise": {"type": "float64", "data": [d["noise"] for d in docs]}}
        out = subprocess.run(["node", str(RUNNER), str(path)], input=json.dumps(feeds), capture_output=True,
                             text=True, timeout=120, cwd=RUNNER.parent)
        assert out.returncode == 0, out.stderr
        got = json.loads(out.stdout)["outputs"]["prediction"]["data"]
        inst = [{k: d[k] for k in ("match", "fresh", "spam", "source", "noise")} for d in docs]
        want = client.post(f"{P}/deployments/ranker/predict", json={"instances": inst}).json()["predictions"]
        assert all(abs(a - b) <= 1e-5 * max(1, abs(b)) for a, b in zip(got, want)), (got, want)


def test_rank_with_cross_validation_and_pairwise(client):
    upload(client, "search_cv", documents(60, seed=2))
    run = client.train({"dataset": "search_cv", "target": "rel", "task": "ranking",
                         "params": {"query_column": "qid", "rank_objective": "pairwise", "n_estimators": 30},
                         "split": {"method": "kfold", "folds": 3}})
    m = run["metrics"]
    assert m["queries"] == 60 and sorted(m["split"]["fold_rows"]) == [240, 240, 240]
    assert m["cv"]["ndcg_at_10"]["mean"] > 0.8 and len(m["cv"]["ndcg_at_10"]["folds"]) == 3
    assert m["ndcg_at_10"] > 0.8


def test_ranking_bad_input(client):
    upload(client, "search_bad", documents(10, seed=3))
    body = {"dataset": "search_bad", "target": "rel", "task": "ranking", "params": {"n_estimators": 5}}
    assert_problem(client.post(f"{P}/runs", json=body), 400, "params.query_column")
    body["params"]["query_column"] = "nope"
    assert_problem(client.post(f"{P}/runs", json=body), 400, "params.query_column", "nope")
    body["params"]["query_column"] = "rel"
    assert_problem(client.post(f"{P}/runs", json=body), 400, "params.query_column")
    body["params"]["query_column"] = "qid"
    assert_problem(client.post(f"{P}/runs", json={**body, "target": "match"}), 400, "target", "integer")
    assert_problem(client.post(f"{P}/runs", json={**body, "split": {"method": "time", "time_column": "qid"}}),
                   400, "split")
    assert_problem(client.post(f"{P}/runs", json={**body, "learner": "linear"}), 400, "task")
    assert_problem(client.post(f"{P}/runs", json={**body, "params": {"query_column": "qid", "rank_objective": "x"}}),
                   400, "rank_objective")
    assert_problem(client.post(f"{P}/tune", json={**body, "time_budget_s": 5}), 400, "task")
    # More folds than queries: the job says which field is at fault.
    r = client.post(f"{P}/runs", json={**body, "split": {"method": "kfold", "folds": 12}})
    if r.status_code == 202:
        job = client.wait_job(r.json()["job"])
        assert job["state"] == "failed" and "split.folds" in json.dumps(job)
    else:
        assert_problem(r, 400, "split.folds")
