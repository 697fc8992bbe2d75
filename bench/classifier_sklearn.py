"""Anchor of bench/classifier.py: scikit-learn's RandomForestClassifier on the same
rows, one core. Reads the train and test CSVs (id,label,6 features), times fit() and
predict() alone (the CSV reading is not counted), prints JSON."""
import json
import sys
import time

import numpy as np
import pandas as pd
from sklearn.ensemble import RandomForestClassifier
from sklearn.impute import SimpleImputer

train_csv, test_csv, n_trees, depth, max_features = sys.argv[1:6]
FEATURES = ["abv", "target_fg", "target_og", "ebc", "srm", "ph"]
train = pd.read_csv(train_csv)
test = pd.read_csv(test_csv)
imputer = SimpleImputer(strategy="median").fit(train[FEATURES])
X, y = imputer.transform(train[FEATURES]), train["label"].to_numpy()
Xt, yt = imputer.transform(test[FEATURES]), test["label"].to_numpy()
model = RandomForestClassifier(n_estimators=int(n_trees), max_depth=int(depth),
                               max_features=int(max_features), n_jobs=1, random_state=0)
t0 = time.perf_counter()
model.fit(X, y)
t1 = time.perf_counter()
pred = model.predict(Xt)
t2 = time.perf_counter()
print(json.dumps({"fit": t1 - t0, "predict": t2 - t1, "rows": len(X), "test_rows": len(Xt),
                  "accuracy": float(np.mean(pred == yt))}))
