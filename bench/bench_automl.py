#!/usr/bin/python3
"""AutoML quality: lathe's POST …/automl against XGBoost tuned by Optuna (TPE, 5-fold xgb.cv with early
stopping), with the same time budget, on real public tabular datasets shipped in Debian packages
(python3-sklearn, python3-statsmodels).

Each dataset is split once (75 % train / 25 % test, stratified for classification, seeded); both contenders see
only the training part and are scored on the test part:
  binary -> ROC-AUC (higher is better), multiclass -> log-loss (lower), regression -> RMSE (lower).
A win or loss needs a difference above the tie margin (0.002 absolute for ROC-AUC, 1 % relative for log-loss and
RMSE); the summary reports wins/ties/losses and the metric difference per dataset.

    /usr/bin/python3 bench/bench_automl.py build [--budget 20] [--only name,name]
"""
import argparse
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import requests

PASSWORD = "bench-admin-password-1"
SEED = 0


# ---- datasets -----------------------------------------------------------------------------------------------

def _clean(df):
    df = df.copy()
    df.columns = [re.sub(r"[^0-9A-Za-z_]+", "_", str(c)).strip("_") or "c" for c in df.columns]
    return df


def datasets():
    from sklearn import datasets as skd
    import statsmodels.api as sm

    def sk(loader, task):
        b = loader(as_frame=True)
        df = _clean(b.frame)
        return df, df.columns[-1], task

    out = {
        "breast_cancer": lambda: sk(skd.load_breast_cancer, "binary"),
        "digits": lambda: sk(skd.load_digits, "multiclass"),
        "wine": lambda: sk(skd.load_wine, "multiclass"),
        "iris": lambda: sk(skd.load_iris, "multiclass"),
        "diabetes": lambda: sk(skd.load_diabetes, "regression"),
    }

    def boston():
        path = Path(skd.__file__).parent / "data" / "boston_house_prices.csv"
        df = _clean(pd.read_csv(path, skiprows=1))
        return df, "MEDV", "regression"

    def fair():
        df = sm.datasets.fair.load_pandas().data.copy()
        df["had_affair"] = (df.pop("affairs") > 0).astype(int)
        return _clean(df), "had_affair", "binary"

    def randhie():
        df = _clean(sm.datasets.randhie.load_pandas().data)
        return df, "mdvis", "regression"

    def anes96():
        df = sm.datasets.anes96.load_pandas().data.copy()
        df = df.drop(columns=["vote", "logpopul"])  # vote and PID are two targets; logpopul repeats popul
        df["PID"] = df["PID"].astype(int)
        return _clean(df), "PID", "multiclass"

    def grunfeld():
        df = sm.datasets.grunfeld.load_pandas().data.copy()
        df["firm"] = df["firm"].astype(str)
        return _clean(df), "invest", "regression"

    out.update({"boston": boston, "fair": fair, "randhie": randhie, "anes96": anes96, "grunfeld": grunfeld})
    return out


def split(df, target, task):
    from sklearn.model_selection import train_test_split
    strat = df[target] if task != "regression" else None
    return train_test_split(df, test_size=0.25, random_state=SEED, stratify=strat)


# ---- scoring ------------------------------------------------------------------------------------------------

METRIC = {"binary": "roc_auc", "multiclass": "log_loss", "regression": "rmse"}


def score(task, y, pred, classes):
    from sklearn.metrics import log_loss, mean_squared_error, roc_auc_score
    if task == "binary":
        return roc_auc_score(y, pred)
    if task == "multiclass":
        return log_loss(y, pred, labels=classes)
    return math.sqrt(mean_squared_error(y, pred))


def outcome(task, lathe, peer):
    """+1 lathe better, 0 tie, -1 peer better."""
    if task == "binary":
        d = lathe - peer
        return 0 if abs(d) <= 0.002 else (1 if d > 0 else -1)
    rel = (peer - lathe) / max(abs(peer), 1e-12)
    return 0 if abs(rel) <= 0.01 else (1 if rel > 0 else -1)


# ---- Optuna + XGBoost ---------------------------------------------------------------------------------------

def optuna_xgboost(train, test, target, task, budget, classes):
    import optuna
    import xgboost as xgb
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    X = train.drop(columns=[target])
    Xt = test.drop(columns=[target])
    for c in X.columns:
        if X[c].dtype == object:
            cats = pd.CategoricalDtype(sorted(set(X[c].dropna())))
            X[c] = X[c].astype(cats)
            Xt[c] = Xt[c].astype(cats)
    y = train[target]
    if task != "regression":
        index = {c: i for i, c in enumerate(classes)}
        y = y.map(index)
    dtrain = xgb.DMatrix(X, y, enable_categorical=True)
    base = {"tree_method": "hist", "nthread": os.cpu_count(), "verbosity": 0, "seed": SEED}
    if task == "binary":
        base.update(objective="binary:logistic", eval_metric="auc")
        key, direction = "test-auc-mean", "maximize"
    elif task == "multiclass":
        base.update(objective="multi:softprob", num_class=len(classes), eval_metric="mlogloss")
        key, direction = "test-mlogloss-mean", "minimize"
    else:
        base.update(objective="reg:squarederror", eval_metric="rmse")
        key, direction = "test-rmse-mean", "minimize"

    def objective(trial):
        p = dict(base,
                 max_depth=trial.suggest_int("max_depth", 2, 10),
                 eta=trial.suggest_float("eta", 0.01, 0.3, log=True),
                 min_child_weight=trial.suggest_float("min_child_weight", 0.1, 20, log=True),
                 subsample=trial.suggest_float("subsample", 0.5, 1.0),
                 colsample_bytree=trial.suggest_float("colsample_bytree", 0.4, 1.0),
                 reg_lambda=trial.suggest_float("lambda", 1e-3, 10, log=True),
                 reg_alpha=trial.suggest_float("alpha", 1e-3, 10, log=True))
        cv = xgb.cv(p, dtrain, num_boost_round=2000, nfold=5, stratified=task != "regression",
                    early_stopping_rounds=50, seed=SEED)
        trial.set_user_attr("rounds", len(cv))
        return float(cv[key].iloc[-1])

    start = time.time()
    study = optuna.create_study(direction=direction, sampler=optuna.samplers.TPESampler(seed=SEED))
    study.optimize(objective, timeout=budget)
    best = study.best_trial
    p = dict(base, **{("eta" if k == "eta" else k): v for k, v in best.params.items()})
    p["reg_lambda"] = p.pop("lambda")
    p["reg_alpha"] = p.pop("alpha")
    model = xgb.train(p, dtrain, num_boost_round=best.user_attrs["rounds"])
    seconds = time.time() - start
    pred = model.predict(xgb.DMatrix(Xt, enable_categorical=True))
    return pred, seconds, len(study.trials)


# ---- lathe --------------------------------------------------------------------------------------------------

class Lathe:
    def __init__(self, build):
        self.tmp = Path(tempfile.mkdtemp(prefix="lathe-automl-bench-"))
        env = dict(os.environ, LATHE_ADMIN_PASSWORD=PASSWORD)
        self.log = open(self.tmp / "lathe.log", "w")
        self.proc = subprocess.Popen([str(Path(build).resolve() / "lathe"), "serve", "--listen", "127.0.0.1:0",
                                      "--port-file", str(self.tmp / "port"), "--data-dir", str(self.tmp / "data")],
                                     stdout=self.log, stderr=self.log, env=env)
        deadline = time.time() + 60
        while not (self.tmp / "port").exists():
            if time.time() > deadline:
                raise RuntimeError("lathe did not start")
            time.sleep(0.05)
        self.url = f"http://127.0.0.1:{(self.tmp / 'port').read_text().strip()}"
        for _ in range(600):
            try:
                if requests.get(self.url + "/healthz", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                time.sleep(0.1)
        token = requests.post(self.url + "/api/v1/auth/login",
                              json={"username": "admin", "password": PASSWORD}).json()["token"]
        self.s = requests.Session()
        self.s.headers["Authorization"] = f"Bearer {token}"
        self.P = self.url + "/api/v1/projects/default"

    def close(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)

    def wait(self, job):
        while True:
            j = self.s.get(f"{self.url}/api/v1/jobs/{job}").json()
            if j["state"] in ("succeeded", "failed", "cancelled"):
                return j
            time.sleep(0.2)

    def automl(self, name, train, test, target, task, budget, classes):
        r = self.s.post(f"{self.P}/datasets?name={name}", data=train.to_csv(index=False).encode(),
                        headers={"Content-Type": "text/csv"})
        r.raise_for_status()
        start = time.time()
        r = self.s.post(f"{self.P}/automl", json={"dataset": name, "target": target, "task": task,
                                                   "metric": METRIC[task], "time_budget_s": budget})
        r.raise_for_status()
        job = self.wait(r.json()["job"])
        seconds = time.time() - start
        if job["state"] != "succeeded":
            raise RuntimeError(f"automl {name}: {job}")
        run = self.s.get(f"{self.P}/runs/{r.json()['run']}").json()
        self.s.post(f"{self.P}/models/{name}/versions", json={"run": run["id"]}).raise_for_status()
        self.s.post(f"{self.P}/deployments", json={"name": name, "model": name}).raise_for_status()
        rows = test.drop(columns=[target]).to_dict(orient="records")
        rows = [{k: (None if isinstance(v, float) and math.isnan(v) else
                     v.item() if hasattr(v, "item") else v) for k, v in row.items()} for row in rows]
        preds = []
        for i in range(0, len(rows), 5000):
            r = self.s.post(f"{self.P}/deployments/{name}/predict", json={"instances": rows[i:i + 5000]})
            r.raise_for_status()
            preds.extend(r.json()["predictions"])
        if task == "multiclass":
            keys = [str(c) for c in classes]
            pred = np.array([[p["probabilities"].get(k, 0.0) for k in keys] for p in preds])
        else:
            pred = np.array(preds, dtype=float)
        s = run["search"]
        return pred, seconds, s["trials"], s["chosen"]["candidate"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--budget", type=float, default=20, help="seconds per dataset for each contender")
    ap.add_argument("--only", default="", help="comma-separated dataset names")
    args = ap.parse_args()
    all_sets = datasets()
    names = [n for n in all_sets if not args.only or n in args.only.split(",")]
    lathe = Lathe(args.build)
    tally = {1: 0, 0: 0, -1: 0}
    try:
        print(f"{'dataset':<14}{'task':<11}{'rows':>6} {'metric':<9}{'lathe':>9}{'optuna':>9}  "
              f"{'diff':>8}  {'result':<6} {'lathe s':>8}{'opt s':>7} {'trials l/o':>11}  chosen")
        for name in names:
            df, target, task = all_sets[name]()
            df = df.dropna(subset=[target])
            train, test = split(df, target, task)
            classes = sorted(df[target].unique().tolist()) if task != "regression" else None
            lp, ls, lt, chosen = lathe.automl(name, train, test, target, task, args.budget, classes)
            op, os_, ot = optuna_xgboost(train, test, target, task, args.budget, classes)
            y = test[target]
            if task == "binary":
                y = (y == classes[1]).astype(int)
            lscore = score(task, y, lp, classes)
            oscore = score(task, y, op, classes)
            res = outcome(task, lscore, oscore)
            tally[res] += 1
            diff = lscore - oscore
            print(f"{name:<14}{task:<11}{len(df):>6} {METRIC[task]:<9}{lscore:>9.4f}{oscore:>9.4f}  {diff:>+8.4f}  "
                  f"{({1: 'win', 0: 'tie', -1: 'loss'})[res]:<6} {ls:>8.1f}{os_:>7.1f} {lt:>5}/{ot:<5}  {chosen}",
                  flush=True)
    finally:
        lathe.close()
    print(f"automl vs optuna+xgboost ({args.budget:g} s each): wins {tally[1]}, ties {tally[0]}, "
          f"losses {tally[-1]} of {sum(tally.values())}")


if __name__ == "__main__":
    sys.exit(main())
