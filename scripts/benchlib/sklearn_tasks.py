"""Real tuning tasks: scikit-learn models on the data sets scikit-learn ships, evaluated
from a table of cached validation errors.

``scripts/build_sklearn_tables.py`` fits every model on a grid of its hyperparameters
(each grid point: mean test error over two stratified half/half splits) and writes
``data/sklearn_tables.json``. An objective then reads the error at any point of the
space by multilinear interpolation between the grid points around it (in log scale for
log-scaled parameters), categorical parameters indexing the table. A run costs
microseconds, so many seeds are cheap, and the optimum is known exactly: multilinear
interpolation takes its minimum at a grid point.

Tasks (``models_*``: choice of SVC / random forest / histogram gradient boosting, 2-4
parameters each; ``mlp_*``: a small multi-layer perceptron, 5 parameters):
models_digits, models_breast_cancer, models_wine, mlp_digits, mlp_breast_cancer, mlp_wine.
"""

from __future__ import annotations

import functools
import json
import math
import os
from typing import Any

import numpy as np

from distopt.space import hp

TABLES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "sklearn_tables.json")
DATASETS = ("digits", "breast_cancer", "wine")

#: Per model: numeric axes (label, kind, grid, log-interpolated) and categorical axes
#: (label, options). The table's shape is categorical axes first, then numeric ones.
GRIDS: dict[str, dict[str, Any]] = {
    "svc": {
        "num": [("svc_C", "log", [1e-2, 1e-1, 1.0, 1e1, 1e2, 1e3]),
                ("svc_gamma", "log", [1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0])],
        "cat": [],
    },
    "rf": {
        "num": [("rf_n_estimators", "int", [10, 50, 200]), ("rf_max_depth", "int", [1, 3, 8, 30]),
                ("rf_max_features", "float", [0.05, 0.3, 1.0])],
        "cat": [("rf_criterion", ["gini", "entropy"])],
    },
    "gb": {
        "num": [("gb_learning_rate", "log", [1e-3, 1e-2, 1e-1, 1.0]), ("gb_max_iter", "int", [10, 50, 200]),
                ("gb_max_leaf_nodes", "int", [4, 16, 64])],
        "cat": [],
    },
    "mlp": {
        "num": [("mlp_width", "int", [8, 32, 128]), ("mlp_alpha", "log", [1e-6, 1e-4, 1e-2, 1.0]),
                ("mlp_lr", "log", [1e-4, 1e-3, 1e-2, 1e-1])],
        "cat": [("mlp_layers", [1, 2]), ("mlp_activation", ["relu", "tanh"])],
    },
}
MODEL_CHOICE = ("svc", "rf", "gb")


def _node(label: str, kind: str, grid: list[float]) -> Any:
    if kind == "log":
        return hp.loguniform(label, math.log(grid[0]), math.log(grid[-1]))
    if kind == "int":
        return hp.uniformint(label, grid[0], grid[-1])
    return hp.uniform(label, grid[0], grid[-1])


def model_space(model: str) -> dict[str, Any]:
    g = GRIDS[model]
    space = {label: _node(label, kind, grid) for label, kind, grid in g["num"]}
    space.update({label: hp.choice(label, options) for label, options in g["cat"]})
    return space


def task_space(task: str) -> Any:
    if task.startswith("models_"):
        return {"model": hp.choice("model", [{"type": m, **model_space(m)} for m in MODEL_CHOICE])}
    return model_space("mlp")


@functools.lru_cache(maxsize=None)
def tables() -> dict[str, dict[str, np.ndarray]]:
    """dataset -> model -> error table; run ``scripts/build_sklearn_tables.py`` if missing."""
    if not os.path.exists(TABLES):
        raise FileNotFoundError(f"{TABLES} is missing: build it with python scripts/build_sklearn_tables.py")
    with open(TABLES) as f:
        raw = json.load(f)
    return {d: {m: np.asarray(t, dtype=float) for m, t in models.items()} for d, models in raw["errors"].items()}


def _position(kind: str, grid: list[float], value: float) -> float:
    """Fractional grid index of ``value`` (log scale for log axes, linear otherwise)."""
    xs = np.log(grid) if kind == "log" else np.asarray(grid, dtype=float)
    x = math.log(value) if kind == "log" else float(value)
    return float(np.interp(x, xs, np.arange(len(grid))))


def interpolate(table: np.ndarray, model: str, params: dict[str, Any]) -> float:
    """Multilinear interpolation of ``table`` at ``params`` (categorical values index it)."""
    g = GRIDS[model]
    sub = table
    for label, options in g["cat"]:
        sub = sub[list(options).index(params[label])]
    pos = [_position(kind, grid, params[label]) for label, kind, grid in g["num"]]
    lo = [min(int(math.floor(p)), len(grid) - 2) for p, (_, _, grid) in zip(pos, g["num"])]
    frac = [p - i for p, i in zip(pos, lo)]
    total = 0.0
    for corner in np.ndindex(*([2] * len(pos))):
        w = 1.0
        for c, f in zip(corner, frac):
            w *= f if c else 1.0 - f
        if w:
            total += w * float(sub[tuple(i + c for i, c in zip(lo, corner))])
    return total


def objective(task: str, params: dict[str, Any]) -> float:
    kind, dataset = task.split("_", 1)
    tabs = tables()[dataset]
    if kind == "models":
        m = params["model"]
        return interpolate(tabs[m["type"]], m["type"], m)
    return interpolate(tabs["mlp"], "mlp", params)


def optimum(task: str) -> tuple[float, Any]:
    """The lowest error of the task and a point that reaches it."""
    kind, dataset = task.split("_", 1)
    models = MODEL_CHOICE if kind == "models" else ("mlp",)
    best = None
    for m in models:
        t = tables()[dataset][m]
        idx = np.unravel_index(int(np.argmin(t)), t.shape)
        if best is None or t[idx] < best[0]:
            g = GRIDS[m]
            point = {label: options[i] for (label, options), i in zip(g["cat"], idx)}
            point.update({label: grid[i] for (label, _, grid), i in zip(g["num"], idx[len(g["cat"]):])})
            best = (float(t[idx]), {"model": {"type": m, **point}} if kind == "models" else point)
    return best


TASKS = tuple(f"{k}_{d}" for k in ("models", "mlp") for d in DATASETS)
