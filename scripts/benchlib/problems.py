"""Test problems with known optima, written once as distopt spaces.

Each problem's objective receives the evaluated point (``space_eval`` of the space), so the
same function serves every optimizer. Regret is ``f(x) - optimum``.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from functools import cached_property
from typing import Any, Callable

import numpy as np

from distopt.algo.prior import sample_prior_point
from distopt.space import compile_space, hp, space_eval


@dataclasses.dataclass(frozen=True)
class Problem:
    name: str
    space: Any
    fn: Callable[[Any], float]
    optimum: float
    note: str = ""
    argmin: Any = None  # a point (as the objective receives it) where ``fn == optimum``
    truth: Callable[[Any], float] | None = None  # noise-free value of a noisy ``fn`` (regret is scored on it)

    def regret(self, params: Any) -> float:
        return float((self.truth or self.fn)(params)) - self.optimum

    @cached_property
    def scale(self) -> float:
        """Median regret of 1000 fixed prior draws: the problem's natural size, used to
        turn a relative epsilon into an absolute one."""
        rng = np.random.default_rng(12345)
        compiled = compile_space(self.space)
        regrets = [self.regret(space_eval(self.space, sample_prior_point(compiled, rng))) for _ in range(1000)]
        return float(np.median(regrets))


def _box(prefix: str, low: float, high: float, dim: int) -> dict[str, Any]:
    return {f"{prefix}{i}": hp.uniform(f"{prefix}{i}", low, high) for i in range(dim)}


def _point(xs: list[float], prefix: str = "x") -> dict[str, float]:
    return {f"{prefix}{i}": float(x) for i, x in enumerate(xs)}


def _vec(params: dict[str, float], dim: int, prefix: str = "x") -> np.ndarray:
    return np.array([params[f"{prefix}{i}"] for i in range(dim)], dtype=float)


# -- the polynomial of hyperopt's documentation -----------------------------------------
_POLY = np.poly1d([1, -2, -28, 28, 12, -26, 100])
_POLY_MIN = -4396.024080109031  # at x = 4.878131965862821, found numerically on [-5, 6]


def _poly(params: dict[str, float]) -> float:
    return float(_POLY(params["x"]))


# -- Branin ---------------------------------------------------------------------------
def _branin(params: dict[str, float]) -> float:
    x1, x2 = params["x0"], params["x1"]
    a, b, c = 1.0, 5.1 / (4 * math.pi**2), 5 / math.pi
    r, s, t = 6.0, 10.0, 1 / (8 * math.pi)
    return a * (x2 - b * x1**2 + c * x1 - r) ** 2 + s * (1 - t) * math.cos(x1) + s


# -- Hartmann-6 -----------------------------------------------------------------------
_H6_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])
_H6_A = np.array([
    [10, 3, 17, 3.5, 1.7, 8],
    [0.05, 10, 17, 0.1, 8, 14],
    [3, 3.5, 1.7, 10, 17, 8],
    [17, 8, 0.05, 10, 0.1, 14],
])
_H6_P = 1e-4 * np.array([
    [1312, 1696, 5569, 124, 8283, 5886],
    [2329, 4135, 8307, 3736, 1004, 9991],
    [2348, 1451, 3522, 2883, 3047, 6650],
    [4047, 8828, 8732, 5743, 1091, 381],
])


def _hartmann6(params: dict[str, float]) -> float:
    x = _vec(params, 6)
    return float(-np.sum(_H6_ALPHA * np.exp(-np.sum(_H6_A * (x - _H6_P) ** 2, axis=1))))


def _rosenbrock4(params: dict[str, float]) -> float:
    x = _vec(params, 4)
    return float(np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2))


def _ackley5(params: dict[str, float]) -> float:
    x = _vec(params, 5)
    d = len(x)
    return float(
        -20.0 * math.exp(-0.2 * math.sqrt(np.sum(x**2) / d))
        - math.exp(np.sum(np.cos(2 * math.pi * x)) / d)
        + 20.0
        + math.e
    )


def _styblinski_tang10(params: dict[str, float]) -> float:
    x = _vec(params, 10)
    return float(0.5 * np.sum(x**4 - 16 * x**2 + 5 * x))


_ST_MIN_1D = -39.16616570377142  # at x = -2.903534...


# -- mixed: integer + categorical + log-scaled ------------------------------------------
_ACT_PENALTY = {"relu": 0.5, "tanh": 0.0, "sigmoid": 1.0, "elu": 0.3}


def _mixed(params: dict[str, Any]) -> float:
    """Shaped like a small network's validation loss; optimum 0 at lr=10**-2.5, layers=6,
    activation='tanh', dropout=0.3, batch_pow=7."""
    u = math.log10(params["lr"]) + 2.5
    v = params["dropout"] - 0.3
    return (
        u**2
        + 4.0 * v**2
        + 0.5 * u * v
        + 0.15 * (params["layers"] - 6) ** 2
        + 0.1 * (params["batch_pow"] - 7) ** 2
        + _ACT_PENALTY[params["activation"]]
    )


_MIXED_SPACE = {
    "lr": hp.loguniform("lr", math.log(1e-5), math.log(1.0)),
    "layers": hp.uniformint("layers", 1, 10),
    "batch_pow": hp.uniformint("batch_pow", 3, 10),
    "activation": hp.choice("activation", ["relu", "tanh", "sigmoid", "elu"]),
    "dropout": hp.uniform("dropout", 0.0, 0.8),
}


# -- conditional: one of three model families, each with its own parameters -------------
def _conditional(params: dict[str, Any]) -> float:
    """Optimum 0 only in the 'svm' branch (C=10**1.5, gamma=10**-2); 'rf' bottoms out at
    0.05 and 'knn' at 0.15, so a sampler must learn both the branch and its sub-space."""
    m = params["model"]
    if m["type"] == "svm":
        a = math.log10(m["C"]) - 1.5
        b = math.log10(m["gamma"]) + 2.0
        return 0.08 * a**2 + 0.15 * b**2 + 0.05 * a * b
    if m["type"] == "rf":
        return (
            0.05
            + 1e-6 * (m["n_estimators"] - 300) ** 2
            + 2e-3 * (m["max_depth"] - 12) ** 2
            + 0.3 * (m["max_features"] - 0.4) ** 2
        )
    k_term = 0.02 * (math.log(m["k"]) - math.log(15)) ** 2
    return 0.15 + k_term + (0.0 if m["weights"] == "distance" else 0.05)


_CONDITIONAL_SPACE = {
    "model": hp.choice("model", [
        {
            "type": "svm",
            "C": hp.loguniform("svm_C", math.log(1e-3), math.log(1e3)),
            "gamma": hp.loguniform("svm_gamma", math.log(1e-5), math.log(10.0)),
        },
        {
            "type": "rf",
            "n_estimators": hp.uniformint("rf_n_estimators", 10, 500),
            "max_depth": hp.uniformint("rf_max_depth", 2, 30),
            "max_features": hp.uniform("rf_max_features", 0.1, 1.0),
        },
        {
            "type": "knn",
            "k": hp.uniformint("knn_k", 1, 50),
            "weights": hp.choice("knn_weights", ["uniform", "distance"]),
        },
    ])
}


PROBLEMS: dict[str, Problem] = {
    p.name: p
    for p in [
        Problem("poly1d", {"x": hp.uniform("x", -5, 6)}, _poly, _POLY_MIN, "hyperopt's 6th-degree polynomial, 1-D",
                {"x": 4.878131965862821}),
        Problem("branin", {"x0": hp.uniform("x0", -5, 10), "x1": hp.uniform("x1", 0, 15)},
                _branin, 0.39788735772973816, "2-D, three global minima", {"x0": math.pi, "x1": 2.275}),
        Problem("hartmann6", _box("x", 0.0, 1.0, 6), _hartmann6, -3.32236801141551, "6-D on [0, 1]^6",
                _point([0.20168952, 0.15001069, 0.47687398, 0.27533243, 0.31165162, 0.65730054])),
        Problem("rosenbrock4", _box("x", -5.0, 10.0, 4), _rosenbrock4, 0.0, "4-D on [-5, 10]^4", _point([1.0] * 4)),
        Problem("ackley5", _box("x", -32.768, 32.768, 5), _ackley5, 0.0, "5-D on [-32.768, 32.768]^5",
                _point([0.0] * 5)),
        Problem("styblinski_tang10", _box("x", -5.0, 5.0, 10), _styblinski_tang10, 10 * _ST_MIN_1D,
                "10-D on [-5, 5]^10", _point([-2.903534018185960] * 10)),
        Problem("mixed", _MIXED_SPACE, _mixed, 0.0, "loguniform + 2 uniformint + choice + uniform",
                {"lr": 10**-2.5, "layers": 6, "batch_pow": 7, "activation": "tanh", "dropout": 0.3}),
        Problem("conditional", _CONDITIONAL_SPACE, _conditional, 0.0, "choice of 3 model families, 2-3 params each",
                {"model": {"type": "svm", "C": 10**1.5, "gamma": 1e-2}}),
    ]
}


# -- held-out problems ----------------------------------------------------------------------
# Not used to choose the sampler's defaults: a setting chosen on the 8 problems above is
# checked here (``bench_tpe_quality.py --problems heldout``), on low-dimensional shapes
# the main set has only two of.
def _forrester(params: dict[str, float]) -> float:
    x = params["x0"]
    return (6 * x - 2) ** 2 * math.sin(12 * x - 4)


def _gramacy_lee(params: dict[str, float]) -> float:
    x = params["x0"]
    return math.sin(10 * math.pi * x) / (2 * x) + (x - 1) ** 4


def _camel(params: dict[str, float]) -> float:
    x, y = params["x0"], params["x1"]
    return (4 - 2.1 * x * x + x**4 / 3) * x * x + x * y + (-4 + 4 * y * y) * y * y


def _goldstein_price(params: dict[str, float]) -> float:
    x, y = params["x0"], params["x1"]
    a = 1 + (x + y + 1) ** 2 * (19 - 14 * x + 3 * x * x - 14 * y + 6 * x * y + 3 * y * y)
    b = 30 + (2 * x - 3 * y) ** 2 * (18 - 32 * x + 12 * x * x + 48 * y - 36 * x * y + 27 * y * y)
    return a * b


def _levy(params: dict[str, float], dim: int) -> float:
    w = 1 + (_vec(params, dim) - 1) / 4
    return float(np.sin(np.pi * w[0]) ** 2
                 + np.sum((w[:-1] - 1) ** 2 * (1 + 10 * np.sin(np.pi * w[:-1] + 1) ** 2))
                 + (w[-1] - 1) ** 2 * (1 + np.sin(2 * np.pi * w[-1]) ** 2))


def _beale(params: dict[str, float]) -> float:
    x, y = params["x0"], params["x1"]
    return (1.5 - x + x * y) ** 2 + (2.25 - x + x * y * y) ** 2 + (2.625 - x + x * y**3) ** 2


_H3_A = np.array([[3.0, 10, 30], [0.1, 10, 35], [3.0, 10, 30], [0.1, 10, 35]])
_H3_P = 1e-4 * np.array([[3689, 1170, 2673], [4699, 4387, 7470], [1091, 8732, 5547], [381, 5743, 8828]])
_H_C = np.array([1.0, 1.2, 3.0, 3.2])


def _hartmann3(params: dict[str, float]) -> float:
    x = _vec(params, 3)
    return float(-np.sum(_H_C * np.exp(-np.sum(_H3_A * (x - _H3_P) ** 2, axis=1))))


def _rosenbrock3(params: dict[str, float]) -> float:
    x = _vec(params, 3)
    return float(np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2))


HELD_OUT: dict[str, Problem] = {
    p.name: p
    for p in [
        Problem("forrester1", _box("x", 0.0, 1.0, 1), _forrester, -6.020740055767083, "1-D, Forrester et al.",
                _point([0.757248757275939])),
        Problem("gramacy_lee1", _box("x", 0.5, 2.5, 1), _gramacy_lee, -0.8690111349894998, "1-D, many local minima",
                _point([0.5485634448495508])),
        Problem("camel2", {"x0": hp.uniform("x0", -3, 3), "x1": hp.uniform("x1", -2, 2)}, _camel,
                -1.0316284534898774, "2-D six-hump camel, two global minima",
                _point([0.08984201394474498, -0.7126564058067623])),
        Problem("goldstein_price2", _box("x", -2.0, 2.0, 2), _goldstein_price, 3.0, "2-D, values over 5 decades",
                _point([0.0, -1.0])),
        Problem("levy2", _box("x", -10.0, 10.0, 2), functools.partial(_levy, dim=2), 0.0, "2-D Levy",
                _point([1.0, 1.0])),
        Problem("beale2", _box("x", -4.5, 4.5, 2), _beale, 0.0, "2-D, a narrow curved valley", _point([3.0, 0.5])),
        Problem("hartmann3", _box("x", 0.0, 1.0, 3), _hartmann3, -3.862779787332663, "3-D on [0, 1]^3",
                _point([0.11458888122541287, 0.5556488954739371, 0.8525469842172746])),
        Problem("levy3", _box("x", -10.0, 10.0, 3), functools.partial(_levy, dim=3), 0.0, "3-D Levy",
                _point([1.0, 1.0, 1.0])),
        Problem("rosenbrock3", _box("x", -5.0, 10.0, 3), _rosenbrock3, 0.0, "3-D on [-5, 10]^3",
                _point([1.0, 1.0, 1.0])),
    ]
}
ALL_PROBLEMS: dict[str, Problem] = {**PROBLEMS, **HELD_OUT}
