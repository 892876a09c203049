#!/usr/bin/env python
"""Build the cached evaluations of the scikit-learn tuning tasks (benchlib/sklearn_tasks.py).

Fits every model of ``sklearn_tasks.GRIDS`` at every grid point on digits, breast_cancer
and wine (the data sets scikit-learn ships), scores the mean test error over two
stratified half/half splits (random_state 0), and writes
``scripts/benchlib/data/sklearn_tables.json``. One thread per fit; about 10-20 minutes on
one core. The committed file was built with scikit-learn 1.9.1; other versions give
slightly different errors, so rebuild before comparing with old results.

    nice -n 19 python scripts/build_sklearn_tables.py [--datasets digits,wine] [--jobs 2]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import itertools  # noqa: E402
import json  # noqa: E402
import multiprocessing  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from benchlib.sklearn_tasks import DATASETS, GRIDS, TABLES  # noqa: E402


def _data(name: str):
    from sklearn import datasets  # noqa: PLC0415

    return getattr(datasets, f"load_{name}")(return_X_y=True)


def _estimator(model: str, p: dict):
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier  # noqa: PLC0415
    from sklearn.neural_network import MLPClassifier  # noqa: PLC0415
    from sklearn.pipeline import make_pipeline  # noqa: PLC0415
    from sklearn.preprocessing import StandardScaler  # noqa: PLC0415
    from sklearn.svm import SVC  # noqa: PLC0415

    if model == "svc":
        return make_pipeline(StandardScaler(), SVC(C=p["svc_C"], gamma=p["svc_gamma"]))
    if model == "rf":
        return RandomForestClassifier(n_estimators=int(p["rf_n_estimators"]), max_depth=int(p["rf_max_depth"]),
                                      max_features=p["rf_max_features"], criterion=p["rf_criterion"],
                                      random_state=0, n_jobs=1)
    if model == "gb":
        return HistGradientBoostingClassifier(learning_rate=p["gb_learning_rate"], max_iter=int(p["gb_max_iter"]),
                                              max_leaf_nodes=int(p["gb_max_leaf_nodes"]), early_stopping=False,
                                              random_state=0)
    width = int(p["mlp_width"])
    return make_pipeline(StandardScaler(), MLPClassifier(
        hidden_layer_sizes=(width,) * int(p["mlp_layers"]), activation=p["mlp_activation"], alpha=p["mlp_alpha"],
        learning_rate_init=p["mlp_lr"], max_iter=60, random_state=0))


def error(task: tuple[str, str, tuple[int, ...]]) -> tuple[str, str, tuple[int, ...], float]:
    """Mean test error of one grid point over the two splits."""
    from sklearn.model_selection import StratifiedShuffleSplit  # noqa: PLC0415

    dataset, model, idx = task
    g = GRIDS[model]
    p = {label: options[i] for (label, options), i in zip(g["cat"], idx)}
    p.update({label: grid[i] for (label, _, grid), i in zip(g["num"], idx[len(g["cat"]):])})
    X, y = _data(dataset)
    errs = []
    for train, test in StratifiedShuffleSplit(n_splits=2, train_size=0.5, random_state=0).split(X, y):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est = _estimator(model, p).fit(X[train], y[train])
        errs.append(float(np.mean(est.predict(X[test]) != y[test])))
    return dataset, model, idx, float(np.mean(errs))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--datasets", default=",".join(DATASETS))
    ap.add_argument("--jobs", type=int, default=1)
    args = ap.parse_args(argv)
    datasets = [d for d in args.datasets.split(",") if d]
    tasks = []
    shapes = {}
    for d in datasets:
        for m, g in GRIDS.items():
            shape = tuple(len(o) for _, o in g["cat"]) + tuple(len(grid) for _, _, grid in g["num"])
            shapes[(d, m)] = shape
            tasks += [(d, m, idx) for idx in itertools.product(*(range(n) for n in shape))]
    out = {(d, m): np.full(s, np.nan) for (d, m), s in shapes.items()}
    t0 = time.perf_counter()
    pool = multiprocessing.get_context("fork").Pool(args.jobs) if args.jobs > 1 else None
    results = pool.imap_unordered(error, tasks) if pool else map(error, tasks)
    for i, (d, m, idx, e) in enumerate(results, 1):
        out[(d, m)][idx] = e
        if i % 25 == 0 or i == len(tasks):
            print(f"  {i}/{len(tasks)} ({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)
    if pool:
        pool.close()
        pool.join()
    old = {}
    if os.path.exists(TABLES):
        with open(TABLES) as f:
            old = json.load(f).get("errors", {})
    for (d, m), t in out.items():
        old.setdefault(d, {})[m] = np.round(t, 6).tolist()
    import sklearn  # noqa: PLC0415

    os.makedirs(os.path.dirname(TABLES), exist_ok=True)
    with open(TABLES, "w") as f:
        json.dump({"sklearn": sklearn.__version__, "errors": old}, f, separators=(",", ":"))
    print(f"wrote {TABLES} ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)


if __name__ == "__main__":
    main()
