"""The IBU baseline of ../shared/spec/punkapi.md with scikit-learn, for comparison
with brewml.cross_validate_ibu: random forest (300 trees), features imputed with
the training fold's median, 5-fold stratified CV repeated 5 times, for each
random_state given. Prints JSON lines {seed, accuracy, macro_f1}.
    /usr/bin/python3 bench/ibu_sklearn.py data.json [seed ...]"""
import json
import sys

import numpy as np
from sklearn.ensemble import RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import RepeatedStratifiedKFold
from sklearn.pipeline import make_pipeline

FEATURES = ["abv", "target_fg", "target_og", "ebc", "srm", "ph"]
BANDS = [20, 40, 60, 100]

beers = [b for b in json.load(open(sys.argv[1])) if b["ibu"] is not None]
X = np.array([[np.nan if b[f] is None else b[f] for f in FEATURES] for b in beers], dtype=float)
y = np.digitize([b["ibu"] for b in beers], BANDS)
for seed in [int(s) for s in sys.argv[2:]] or [0]:
    acc, f1 = [], []
    cv = RepeatedStratifiedKFold(n_splits=5, n_repeats=5, random_state=seed)
    for train, test in cv.split(X, y):
        model = make_pipeline(SimpleImputer(strategy="median"),
                              RandomForestClassifier(n_estimators=300, random_state=seed, n_jobs=1))
        model.fit(X[train], y[train])
        pred = model.predict(X[test])
        acc.append(accuracy_score(y[test], pred))
        f1.append(f1_score(y[test], pred, average="macro"))
    print(json.dumps({"seed": seed, "accuracy": float(np.mean(acc)), "macro_f1": float(np.mean(f1))}))
