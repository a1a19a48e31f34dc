"""The peer for the predict benchmark: an XGBoost model with the same parameters, trained on the same CSV,
served by FastAPI + uvicorn the way MLflow's scoring server does it: JSON `dataframe_split` -> pandas
DataFrame -> typed columns -> xgboost predict.

    /usr/bin/python3 bench/fastapi_peer.py TRAIN.csv LABEL PORT [n_estimators] [max_depth]
"""
import sys

import numpy as np
import pandas as pd
import uvicorn
import xgboost as xgb
from fastapi import FastAPI, Request

csv_path, label, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
n_estimators = int(sys.argv[4]) if len(sys.argv) > 4 else 100
max_depth = int(sys.argv[5]) if len(sys.argv) > 5 else 6

df = pd.read_csv(csv_path)
y = df.pop(label)
categories, dates = {}, []
for col in df.columns:
    if df[col].dtype == object:
        parsed = pd.to_datetime(df[col], errors="coerce")
        if parsed.notna().mean() > 0.9:
            dates.append(col)
            df[col] = parsed.astype("int64") / 1e9
        else:
            categories[col] = sorted(df[col].dropna().unique().tolist())
            df[col] = pd.Categorical(df[col], categories=categories[col])
columns = list(df.columns)
booster = xgb.train({"objective": "binary:logistic", "max_depth": max_depth, "eta": 0.1, "tree_method": "hist",
                     "nthread": 2}, xgb.DMatrix(df, label=y, enable_categorical=True), n_estimators)
booster.set_param({"nthread": 1})
app = FastAPI()


def to_frame(split):
    frame = pd.DataFrame(split["data"], columns=split["columns"])
    for col, cats in categories.items():
        frame[col] = pd.Categorical(frame[col], categories=cats)
    for col in dates:
        frame[col] = pd.to_datetime(frame[col]).astype("int64") / 1e9
    for col in columns:
        if col not in categories and col not in dates:
            frame[col] = pd.to_numeric(frame[col], errors="coerce").astype(np.float64)
    return frame[columns]


@app.post("/invocations")
async def invocations(request: Request):
    body = await request.json()
    frame = to_frame(body["dataframe_split"])
    preds = booster.predict(xgb.DMatrix(frame, enable_categorical=True, nthread=1))
    return {"predictions": preds.tolist()}


@app.get("/ping")
async def ping():
    return {"ok": True}


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
