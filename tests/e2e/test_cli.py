"""The `lathe` CLI client against a real server: every command is the real binary run as a subprocess, with
LATHE_URL pointing at the module's server and HOME at a temporary directory (so the saved login is isolated).

The steps build on each other through module-scoped fixtures (login -> import -> train -> register -> deploy),
so each test can also run alone.
"""
import json
import os
import stat
import subprocess
from pathlib import Path

import pytest
import requests

from conftest import ADMIN_PASSWORD, LATHE_BIN
from datagen import churn_csv

INSTANCE = {"age": 30, "income": 52000.5, "plan": "basic", "signup": "2024-03-04", "visits": 2}


class Cli:
    def __init__(self, url, home: Path):
        self.url = url
        self.home = home
        home.mkdir(parents=True, exist_ok=True)

    def env(self, **extra):
        env = {k: v for k, v in os.environ.items()
               if k not in ("LATHE_TOKEN", "LATHE_PASSWORD", "XDG_CONFIG_HOME", "LATHE_URL")}
        env.update(HOME=str(self.home), LATHE_URL=self.url)
        env.update(extra)
        return env

    def run(self, *args, input=None, timeout=180, **env):
        return subprocess.run([LATHE_BIN, *args], input=input, capture_output=True, text=True,
                              timeout=timeout, env=self.env(**env))

    def ok(self, *args, **kw):
        p = self.run(*args, **kw)
        assert p.returncode == 0, f"lathe {' '.join(args)} exited {p.returncode}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}"
        return p

    def json(self, *args, **kw):
        p = self.ok(*args, "--json", **kw)
        return json.loads(p.stdout)

    @property
    def credentials(self):
        return self.home / ".config" / "lathe" / "credentials"


@pytest.fixture(scope="module")
def cli(server, tmp_path_factory):
    """A CLI user who has logged in with `lathe login --password-stdin`."""
    c = Cli(server.url, tmp_path_factory.mktemp("cli-home"))
    c.ok("login", "--password-stdin", input=ADMIN_PASSWORD + "\n")
    return c


@pytest.fixture(scope="module")
def churn_file(tmp_path_factory):
    p = tmp_path_factory.mktemp("cli-data") / "churn.csv"
    p.write_text(churn_csv())
    return p


@pytest.fixture(scope="module")
def dataset(cli, churn_file):
    return cli.json("datasets", "import", str(churn_file), "--name", "churn")


@pytest.fixture(scope="module")
def trained(cli, dataset):
    """The run JSON of a binary run trained with the wait (the CLI polls the job)."""
    return cli.json("train", "--dataset", "churn", "--target", "churned", "--task", "binary",
                    "--param", "n_estimators=30", "--param", "max_depth=4",
                    "--test-fraction", "0.25", "--seed", "1")


@pytest.fixture(scope="module")
def registered(cli, trained):
    return cli.json("models", "register", "churn-model", "--run", trained["id"])


@pytest.fixture(scope="module")
def deployed(cli, registered):
    return cli.json("deploy", "churn-api", "--model", "churn-model", "--version", str(registered["version"]))


def test_login_saves_a_private_credentials_file(server, tmp_path):
    c = Cli(server.url, tmp_path / "home")
    p = c.ok("login", "--password-stdin", input=ADMIN_PASSWORD + "\n")
    assert "Logged in as admin" in p.stdout
    mode = stat.S_IMODE(c.credentials.stat().st_mode)
    assert mode == 0o600, oct(mode)
    saved = json.loads(c.credentials.read_text())
    assert saved["url"] == server.url and saved["token"]
    # The saved token works for the API.
    r = requests.get(server.url + "/api/v1/projects/default/datasets",
                     headers={"Authorization": f"Bearer {saved['token']}"}, timeout=30)
    assert r.status_code == 200, r.text

    # LATHE_PASSWORD works too, and XDG_CONFIG_HOME moves the file.
    xdg = tmp_path / "xdg"
    p = c.ok("login", LATHE_PASSWORD=ADMIN_PASSWORD, XDG_CONFIG_HOME=str(xdg))
    assert stat.S_IMODE((xdg / "lathe" / "credentials").stat().st_mode) == 0o600


def test_wrong_password_exits_1_with_the_servers_detail(server, tmp_path):
    c = Cli(server.url, tmp_path / "home")
    p = c.run("login", "--password-stdin", input="wrong-password\n")
    assert p.returncode == 1, p
    assert p.stderr.startswith("error: "), p.stderr
    assert "request id" in p.stderr
    assert not c.credentials.exists()


def test_without_login_the_api_refuses_and_the_cli_hints(server, tmp_path):
    c = Cli(server.url, tmp_path / "home")
    p = c.run("datasets", "list")
    assert p.returncode == 1, p
    assert "error: " in p.stderr and "lathe login" in p.stderr


def test_import_prints_summary_and_columns(cli, churn_file, dataset):
    assert dataset["name"] == "churn" and dataset["rows"] == 400
    assert [c["name"] for c in dataset["columns"]] == ["age", "income", "plan", "signup", "visits", "churned"]
    # A second version, human output this time.
    p = cli.ok("datasets", "import", str(churn_file), "--name", "churn", "--format", "csv")
    assert "400 rows" in p.stdout and "6 columns" in p.stdout
    for col in ("COLUMN", "TYPE", "age", "income", "plan", "churned"):
        assert col in p.stdout, p.stdout
    # The progress bar is for terminals only: nothing on a captured stderr.
    assert "uploading" not in p.stderr


def test_datasets_list_show_rows(cli, dataset):
    p = cli.ok("datasets", "list")
    assert p.stdout.splitlines()[0].split()[:1] == ["NAME"]
    assert any(line.split()[0] == "churn" for line in p.stdout.splitlines()[1:])
    listed = cli.json("datasets", "list")
    assert "churn" in [d["name"] for d in listed["datasets"]]

    shown = cli.json("datasets", "show", "churn")
    assert shown["name"] == "churn" and len(shown["versions"]) >= 1
    assert "VERSION" in cli.ok("datasets", "show", "churn").stdout

    p = cli.ok("datasets", "rows", "churn", "--limit", "5", "--version", "1")
    lines = p.stdout.splitlines()
    assert lines[0].split() == ["age", "income", "plan", "signup", "visits", "churned"]
    assert len(lines) == 1 + 5 + 1, p.stdout  # header, 5 rows, the "rows 1-5 of 400" footer
    assert "of 400" in lines[-1]
    rows = cli.json("datasets", "rows", "churn", "--offset", "10", "--limit", "3")  # latest version
    assert rows["total"] == 400 and rows["offset"] == 10 and len(rows["rows"]) == 3


def test_train_binary_waits_and_prints_metrics(cli, dataset, trained):
    assert trained["state"] == "succeeded", trained
    assert trained["metrics"], trained
    p = cli.ok("train", "--dataset", "churn", "--version", "1", "--target", "churned", "--task", "binary",
               "--param", "n_estimators=10", "--param", "eta=0.3")
    assert "succeeded" in p.stdout and "METRIC" in p.stdout, p.stdout
    # Metric values are printed with at most 4 significant digits.
    for line in p.stdout.splitlines()[2:]:
        value = line.split()[-1]
        digits = value.lstrip("-0.").replace(".", "").split("e")[0]
        assert len(digits) <= 4, line
    # Not a terminal: progress comes as plain lines on stderr, no carriage returns.
    assert "\r" not in p.stderr and "succeeded" in p.stderr



def test_train_unsupervised_needs_no_target(cli, dataset):
    p = cli.ok("train", "--dataset", "churn", "--version", "1", "--learner", "kmeans", "--param", "n_clusters=3")
    assert "succeeded" in p.stdout and "silhouette" in p.stdout, p.stdout
    out = cli.json("train", "--dataset", "churn", "--learner", "isolation_forest", "--target", "churned")
    assert out["task"] == "anomaly" and out["metrics"]["anomalies"] > 0, out
    bad = cli.run("train", "--dataset", "churn", "--learner", "xgboost", "--task", "binary")
    assert bad.returncode == 2 and "--target is required" in bad.stderr


def test_keys_create_list_use_and_revoke(cli, dataset):
    p = cli.ok("keys", "create", "reader", "--permission", "read", "--expires-days", "7")
    key = p.stdout.strip()
    assert key.startswith("lk_") and "shown only now" in p.stderr
    listed = cli.ok("keys", "list").stdout
    assert "reader" in listed and "active" in listed and key not in listed
    # The key works as a token for what it allows.
    assert cli.ok("datasets", "list", LATHE_TOKEN=key).stdout.count("churn") >= 1
    bad = cli.run("train", "--dataset", "churn", "--target", "churned", "--task", "binary", LATHE_TOKEN=key)
    assert bad.returncode == 1 and "does not allow" in bad.stderr
    key_id = key.split("_")[1]
    assert "Revoked" in cli.ok("keys", "revoke", key_id).stdout
    assert cli.run("datasets", "list", LATHE_TOKEN=key).returncode == 1
    assert cli.run("keys", "create", "x").returncode == 2


def test_train_kfold_prints_cross_validation_and_bad_split_flags_name_the_field(cli, dataset):
    p = cli.ok("train", "--dataset", "churn", "--version", "1", "--target", "churned", "--task", "binary",
               "--split", "kfold", "--folds", "3", "--param", "n_estimators=5")
    cv = [line for line in p.stdout.splitlines() if line.startswith("cv roc_auc")]
    assert len(cv) == 1 and "±" in cv[0], p.stdout
    mean, std = (float(x) for x in cv[0].split()[-3::2])
    assert 0.5 < mean <= 1 and 0 <= std < 0.2, cv[0]
    assert "confusion_matrix" not in p.stdout  # structures only with --json
    bad = cli.run("train", "--dataset", "churn", "--target", "churned", "--task", "binary", "--split", "kfold",
                  "--test-fraction", "0.3")
    assert bad.returncode != 0 and "split.test_fraction" in bad.stderr, (bad.stdout, bad.stderr)
    bad = cli.run("train", "--dataset", "churn", "--target", "churned", "--task", "binary", "--split", "time",
                  "--time-column", "age")
    assert bad.returncode != 0 and "split.time_column" in bad.stderr, (bad.stdout, bad.stderr)


def test_automl_and_tune_print_the_leaderboard_and_trials(cli, dataset):
    p = cli.ok("automl", "--dataset", "churn", "--target", "churned", "--budget", "4")
    assert "leaderboard (roc_auc" in p.stdout and "CANDIDATE" in p.stdout, p.stdout
    assert "lathe models register NAME --run run_" in p.stdout
    p = cli.ok("tune", "--dataset", "churn", "--target", "churned", "--task", "binary", "--trials", "4",
               "--folds", "3", "--space", '{"max_depth": {"type": "int", "low": 2, "high": 4}}')
    assert "best trial" in p.stdout and "of 4" in p.stdout, p.stdout
    run = p.stdout.split("--run ")[1].split()[0]
    t = cli.ok("runs", "trials", run)
    assert t.stdout.count("\n") == 5 and "max_depth=" in t.stdout, t.stdout  # header + 4 trials
    bad = cli.run("tune", "--dataset", "churn", "--target", "churned", "--task", "binary", "--sampler", "bayes")
    assert bad.returncode != 0 and "sampler" in bad.stderr, (bad.stdout, bad.stderr)
    bad = cli.run("tune", "--dataset", "churn", "--target", "churned", "--task", "binary", "--space", "{oops")
    assert bad.returncode != 0 and "--space" in bad.stderr


def test_models_stage_promotes_and_reports(cli, trained, registered):
    p = cli.ok("models", "stage", "churn-model", "1", "--stage", "staging")
    assert "is now staging" in p.stdout, p.stdout
    bad = cli.run("models", "stage", "churn-model", "1", "--stage", "live")
    assert bad.returncode != 0 and "stage" in bad.stderr


def test_runs_list_sorted_filtered_compare_and_show_curves(cli, dataset):
    ids = []
    for depth in ("2", "5"):
        out = cli.json("train", "--dataset", "churn", "--version", "1", "--target", "churned", "--task", "binary",
                       "--param", "n_estimators=8", "--param", f"max_depth={depth}")
        ids.append(out["id"])  # --json prints the finished run
    listed = cli.json("runs", "list", "--sort", "metrics.roc_auc", "--order", "asc", "--filter",
                      "params.n_estimators=8")["runs"]
    assert {r["id"] for r in listed} >= set(ids)
    aucs = [r["metrics"]["roc_auc"] for r in listed]
    assert aucs == sorted(aucs)
    table = cli.ok("runs", "list", "--filter", "params.max_depth=5,params.n_estimators=8").stdout
    assert ids[1] in table and ids[0] not in table, table
    bad = cli.run("runs", "list", "--sort", "nonsense")
    assert bad.returncode != 0 and "sort" in bad.stderr
    cmp = cli.ok("runs", "compare", *ids).stdout
    depth_line = next(line for line in cmp.splitlines() if "params.max_depth" in line)
    assert depth_line.startswith("*") and depth_line.split()[-2:] == ["2", "5"], cmp
    assert any(line.startswith("metrics.roc_auc") for line in cmp.splitlines()), cmp
    show = cli.ok("runs", "show", ids[0]).stdout
    assert "learning curve (logloss, holdout, 8 rounds)" in show, show
    assert "roc_curve" not in show

def test_train_no_wait_then_jobs_wait_and_show(cli, dataset):
    out = cli.json("train", "--dataset", "churn", "--target", "churned", "--task", "binary", "--no-wait",
                   "--param", "n_estimators=5")
    assert out["run"] and out["job"]
    job = cli.json("jobs", "wait", out["job"])
    assert job["state"] == "succeeded", job
    assert "succeeded" in cli.ok("jobs", "show", out["job"]).stdout
    run = cli.json("runs", "show", out["run"])
    assert run["id"] == out["run"] and run["metrics"]
    assert out["run"] in cli.ok("runs", "list").stdout
    assert out["run"] in [r["id"] for r in cli.json("runs", "list")["runs"]]


def test_training_failure_exits_1_with_the_error(cli, dataset):
    p = cli.run("train", "--dataset", "churn", "--target", "no_such_column", "--task", "binary")
    assert p.returncode == 1, p
    assert "error: " in p.stderr and "no_such_column" in p.stderr, p.stderr


def test_register_and_list_models(cli, trained, registered):
    assert registered["name"] == "churn-model" and registered["version"] == 1
    assert registered["run"] == trained["id"]
    assert "churn-model" in cli.ok("models", "list").stdout
    shown = cli.json("models", "show", "churn-model")
    assert [v["version"] for v in shown["versions"]] == [1]
    assert trained["id"] in cli.ok("models", "show", "churn-model").stdout


def test_deploy_then_redeploy_switches(cli, trained, registered, deployed):
    assert deployed["name"] == "churn-api" and deployed["model"] == "churn-model" and deployed["version"] == 1
    v2 = cli.json("models", "register", "churn-model", "--run", trained["id"])
    assert v2["version"] == 2
    p = cli.ok("deploy", "churn-api", "--model", "churn-model", "--version", "2")
    assert "switched" in p.stdout, p.stdout
    assert cli.json("deployments", "show", "churn-api")["version"] == 2
    assert "churn-api" in cli.ok("deployments", "list").stdout
    p = cli.ok("deploy", "churn-api", "--model", "churn-model", "--version", "1")
    assert cli.json("deployments", "show", "churn-api")["version"] == 1


def test_predict_from_data_stdin_jsonl_and_file(cli, deployed, tmp_path):
    p = cli.ok("predict", "churn-api", "--data", json.dumps(INSTANCE))
    lines = p.stdout.splitlines()
    assert len(lines) == 1
    assert 0.0 <= float(json.loads(lines[0])) <= 1.0

    jsonl = "\n".join(json.dumps(dict(INSTANCE, visits=v)) for v in (1, 15, 29)) + "\n"
    p = cli.ok("predict", "churn-api", input=jsonl)
    assert len(p.stdout.splitlines()) == 3

    f = tmp_path / "in.json"
    f.write_text(json.dumps([INSTANCE, INSTANCE]))
    out = cli.json("predict", "churn-api", "--file", str(f))
    assert len(out["predictions"]) == 2 and out["model"] == "churn-model"
    assert out["predictions"][0] == out["predictions"][1]

    bad = cli.run("predict", "churn-api", input='{"age": 30}\n{"age":\n')
    assert bad.returncode == 2 and "line 2" in bad.stderr, bad


def test_json_output_is_the_exact_response(cli, dataset, server):
    token = json.loads(cli.credentials.read_text())["token"]
    direct = requests.get(server.url + "/api/v1/projects/default/datasets/churn",
                          headers={"Authorization": f"Bearer {token}"}, timeout=30).json()
    assert cli.json("datasets", "show", "churn") == direct
    # Global flags may come anywhere on the line.
    assert json.loads(cli.ok("--json", "datasets", "show", "churn").stdout) == direct
    assert json.loads(cli.ok("datasets", "--project", "default", "show", "churn", "--json").stdout) == direct


def test_bad_command_exits_2_with_usage(cli):
    for args in (["frobnicate"], ["datasets", "frobnicate"], ["datasets", "import"],
                 ["datasets", "list", "--no-such-flag"], ["train", "--dataset", "churn"]):
        p = cli.run(*args)
        assert p.returncode == 2, (args, p)
        assert "usage: lathe" in p.stderr, (args, p.stderr)
    p = cli.run()
    assert p.returncode == 2 and "usage" in p.stdout + p.stderr, p
    p = cli.ok("train", "--help")
    assert "--target" in p.stdout and "--param KEY=VALUE" in p.stdout


def test_missing_file_is_a_clear_error(cli, tmp_path):
    missing = tmp_path / "nope.csv"
    p = cli.run("datasets", "import", str(missing), "--name", "x")
    assert p.returncode == 1, p
    assert str(missing) in p.stderr and "No such file" in p.stderr, p.stderr


def test_unknown_dataset_exits_1_with_the_servers_detail(cli, server):
    token = json.loads(cli.credentials.read_text())["token"]
    r = requests.get(server.url + "/api/v1/projects/default/datasets/does-not-exist",
                     headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert r.status_code == 404
    p = cli.run("datasets", "show", "does-not-exist")
    assert p.returncode == 1, p
    assert f"error: {r.json()['detail']}" in p.stderr, p.stderr
    assert "request id: " in p.stderr


def test_connection_refused_names_the_url(cli):
    p = cli.run("datasets", "list", "--url", "http://127.0.0.1:1")
    assert p.returncode == 1, p
    assert "http://127.0.0.1:1" in p.stderr


def test_logout_forgets_the_token(server, tmp_path):
    c = Cli(server.url, tmp_path / "home")
    c.ok("login", "--password-stdin", input=ADMIN_PASSWORD + "\n")
    token = json.loads(c.credentials.read_text())["token"]
    c.ok("logout")
    assert not c.credentials.exists()
    r = requests.get(server.url + "/api/v1/projects/default/datasets",
                     headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert r.status_code == 401, r.text
    assert c.run("datasets", "list").returncode == 1


def test_delete_deployment(cli, deployed):
    cli.ok("deployments", "delete", "churn-api")
    p = cli.run("deployments", "show", "churn-api")
    assert p.returncode == 1 and "error: " in p.stderr
