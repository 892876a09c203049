"""One ask/tell interface over distopt, optuna and hyperopt.

Every adapter is built from a distopt space, so all optimizers search the same space:
for hyperopt the space is rebuilt with ``hyperopt.hp`` under the same labels, for optuna
it is sampled define-by-run in the compiled parameter order (parents before children).
"""

from __future__ import annotations

import functools
import itertools
import json
import logging
import math
import operator
import os
import warnings
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from distopt.algo import History, rand
from distopt.space import compile_space, space_eval
from distopt.space.compile import CompiledSpace, ParamSpec
from distopt.space.nodes import Choice, Expr, Param


# -- distopt --------------------------------------------------------------------------
def _distopt_tpe():
    from distopt.algo import tpe  # noqa: PLC0415  (may not exist in older trees)

    return tpe


@functools.lru_cache(maxsize=None)
def distopt_level() -> str:
    """``"study"`` when ``distopt.study.study.Study`` works (what users run), else ``"sampler"``
    (the bare ``suggest`` function driven with a History and a pending array)."""
    try:
        from distopt.space import hp  # noqa: PLC0415
        from distopt.study.study import Study  # noqa: PLC0415

        study = Study({"x": hp.uniform("x", 0.0, 1.0)}, algo=rand.suggest, seed=0)
        trial = study.ask()
        study.tell(trial, 0.0)
        return "study"
    except Exception:  # noqa: BLE001  -- any failure means: use the sampler level
        return "sampler"


class DistoptStudy:
    """distopt as users run it: ``Study.ask`` / ``Study.tell``."""

    def __init__(self, space: Any, algo: Callable[..., list], seed: int) -> None:
        from distopt.study.study import Study  # noqa: PLC0415

        self.study = Study(space, algo=algo, seed=seed)

    def ask(self) -> tuple[Any, Any]:
        trial = self.study.ask()
        return trial, trial.params

    def tell(self, handle: Any, loss: float) -> None:
        self.study.tell(handle, loss)


class DistoptSampler:
    """distopt's sampler driven directly: History of finished trials + pending rows."""

    def __init__(self, space: Any, algo: Callable[..., list], seed: int) -> None:
        self.space = space
        self.compiled = compile_space(space)
        self.algo = algo
        self.history = History(self.compiled)
        self.rng = np.random.default_rng(seed)
        self.pending: dict[int, tuple[dict, np.ndarray]] = {}
        self._ids = itertools.count()

    def ask(self) -> tuple[Any, Any]:
        rows = [row for _, row in self.pending.values()]
        pending = np.vstack(rows) if rows else np.empty((0, len(self.compiled)))
        (vals,) = self.algo(self.compiled, self.history, pending, 1, self.rng)
        tid = next(self._ids)
        self.pending[tid] = (vals, self.history.encode(vals))
        return tid, space_eval(self.space, vals)

    def tell(self, handle: Any, loss: float) -> None:
        vals, _ = self.pending.pop(handle)
        self.history.add(vals, loss)


def make_distopt(space: Any, seed: int, algo: Callable[..., list]):
    cls = DistoptStudy if distopt_level() == "study" else DistoptSampler
    return cls(space, algo, seed)


def _tpe_algo(**settings: Any) -> Callable[..., list]:
    tpe = _distopt_tpe()
    return functools.partial(tpe.suggest, **settings) if settings else tpe.suggest


# -- optuna ---------------------------------------------------------------------------
def _quiet_optuna():
    import optuna  # noqa: PLC0415

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    warnings.filterwarnings("ignore", module="optuna")
    return optuna


def optuna_suggest(trial: Any, spec: ParamSpec) -> Any:
    """One parameter through optuna's suggest API, in the value scale the space produces."""
    if spec.kind == "cat":
        return trial.suggest_categorical(spec.label, list(range(spec.n_options)))
    if spec.kind == "int":
        return trial.suggest_int(spec.label, int(spec.low), int(spec.high) - 1)
    if spec.kind == "normal":
        # optuna has no normal prior: search mu +- 4 sigma uniformly (same internal scale)
        low, high = spec.mu - 4 * spec.sigma, spec.mu + 4 * spec.sigma
    else:
        low, high = spec.low, spec.high
    if spec.log:
        v = trial.suggest_float(spec.label, math.exp(low), math.exp(high), log=True)
        return v if spec.q is None else float(np.round(v / spec.q) * spec.q)
    if spec.q is None:
        return trial.suggest_float(spec.label, low, high)
    qlow, qhigh = round(low / spec.q), round(high / spec.q)
    if spec.q == 1.0 and float(low).is_integer() and float(high).is_integer():
        return float(trial.suggest_int(spec.label, int(low), int(high)))
    return float(trial.suggest_int(spec.label, qlow, qhigh) * spec.q)


def optuna_distribution(spec: ParamSpec) -> tuple[Any, Callable[[float], Any]]:
    """The optuna distribution ``optuna_suggest`` uses for ``spec`` and the map from a
    distopt value to that distribution's value (for filling a study with ``create_trial``)."""
    from optuna.distributions import (  # noqa: PLC0415
        CategoricalDistribution, FloatDistribution, IntDistribution,
    )

    if spec.kind == "cat":
        return CategoricalDistribution(list(range(spec.n_options))), int
    if spec.kind == "int":
        return IntDistribution(int(spec.low), int(spec.high) - 1), int
    low, high = (spec.mu - 4 * spec.sigma, spec.mu + 4 * spec.sigma) if spec.kind == "normal" else (spec.low, spec.high)
    if spec.log:
        return FloatDistribution(math.exp(low), math.exp(high), log=True), float
    if spec.q is None:
        return FloatDistribution(low, high), float
    if spec.q == 1.0 and float(low).is_integer() and float(high).is_integer():
        return IntDistribution(int(low), int(high)), lambda v: int(round(v))
    return IntDistribution(round(low / spec.q), round(high / spec.q)), lambda v, q=spec.q: int(round(v / q))


def optuna_vals(trial: Any, compiled: CompiledSpace) -> dict[str, Any]:
    vals: dict[str, Any] = {}
    for spec in compiled:
        if spec.is_active(vals):
            vals[spec.label] = optuna_suggest(trial, spec)
    return vals


class OptunaAdapter:
    def __init__(self, space: Any, sampler: Any) -> None:
        optuna = _quiet_optuna()
        self.space = space
        self.compiled = compile_space(space)
        self.study = optuna.create_study(sampler=sampler)

    def ask(self) -> tuple[Any, Any]:
        trial = self.study.ask()
        return trial, space_eval(self.space, optuna_vals(trial, self.compiled))

    def tell(self, handle: Any, loss: float) -> None:
        self.study.tell(handle, loss)


def make_optuna(space: Any, seed: int, **kwargs: Any) -> OptunaAdapter:
    optuna = _quiet_optuna()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sampler = optuna.samplers.TPESampler(seed=seed, **kwargs)
    return OptunaAdapter(space, sampler)


# -- hyperopt -------------------------------------------------------------------------
_HP_OPS: dict[str, Callable[..., Any]] = {
    "add": operator.add, "sub": operator.sub, "mul": operator.mul, "truediv": operator.truediv,
    "floordiv": operator.floordiv, "pow": operator.pow, "neg": operator.neg,
}


def to_hyperopt(space: Any) -> Any:
    """The same space built with ``hyperopt.hp`` (same labels, same distributions)."""
    from hyperopt import hp as hhp  # noqa: PLC0415
    from hyperopt.pyll import scope  # noqa: PLC0415

    if isinstance(space, Param):
        a = space.args
        if space.dist == "randint":
            return hhp.randint(space.label, int(a[0]), int(a[1]))
        return getattr(hhp, space.dist)(space.label, *a)
    if isinstance(space, Choice):
        options = [to_hyperopt(o) for o in space.options]
        if space.probs is None:
            return hhp.choice(space.label, options)
        return hhp.pchoice(space.label, list(zip(space.probs, options)))
    if isinstance(space, Expr):
        args = [to_hyperopt(a) for a in space.args]
        if space.op in _HP_OPS:
            return _HP_OPS[space.op](*args)
        return getattr(scope, space.op)(*args)
    if isinstance(space, dict):
        return {k: to_hyperopt(v) for k, v in space.items()}
    if isinstance(space, list):
        return [to_hyperopt(v) for v in space]
    if isinstance(space, tuple):
        return tuple(to_hyperopt(v) for v in space)
    return space


class HyperoptAdapter:
    """hyperopt's TPE driven the way ``FMinIter.run`` does with ``max_queue_len > 1``:
    asked-but-unfinished trials stay in ``Trials`` as NEW/RUNNING documents (their loss
    is unknown; hyperopt's TPE counts them with loss +inf) and the trials are refreshed
    around every call of ``tpe.suggest(new_ids, domain, trials, seed)``."""

    def __init__(self, space: Any, seed: int, algo: Callable[..., list] | None = None) -> None:
        import hyperopt  # noqa: PLC0415
        from hyperopt import base  # noqa: PLC0415

        logging.getLogger("hyperopt").setLevel(logging.WARNING)
        self.hyperopt = hyperopt
        self.base = base
        self.hspace = to_hyperopt(space)
        self.domain = base.Domain(lambda _: 0.0, self.hspace)
        self.trials = base.Trials()
        self.algo = algo or hyperopt.tpe.suggest
        self.rstate = np.random.default_rng(seed)

    def ask(self) -> tuple[Any, Any]:
        trials = self.trials
        new_ids = trials.new_trial_ids(1)
        trials.refresh()
        docs = self.algo(new_ids, self.domain, trials, self.rstate.integers(2**31 - 1))
        trials.insert_trial_docs(docs)
        trials.refresh()
        doc = trials._dynamic_trials[-1]
        doc["state"] = self.base.JOB_STATE_RUNNING  # a worker picked it up
        vals = {k: v[0] for k, v in doc["misc"]["vals"].items() if v}
        return doc, self.hyperopt.space_eval(self.hspace, vals)

    def tell(self, handle: Any, loss: float) -> None:
        handle["state"] = self.base.JOB_STATE_DONE
        handle["result"] = {"loss": float(loss), "status": self.hyperopt.STATUS_OK}
        self.trials.refresh()


def _env_settings() -> dict[str, Any]:
    """Settings for ``distopt-custom``: try a setting on a benchmark without editing code."""
    return json.loads(os.environ.get("DISTOPT_TPE_SETTINGS") or "{}")


# -- the registry -----------------------------------------------------------------------
@dataclass(frozen=True)
class OptimizerSpec:
    name: str
    description: str
    make: Callable[[Any, int], Any]  # (space, seed) -> adapter


OPTIMIZERS: dict[str, OptimizerSpec] = {
    o.name: o
    for o in [
        OptimizerSpec("distopt", "distopt TPE, default settings",
                      lambda space, seed: make_distopt(space, seed, _tpe_algo())),
        *[
            OptimizerSpec(f"distopt-{liar}", f"distopt TPE, liar={liar!r}",
                          lambda space, seed, liar=liar: make_distopt(space, seed, _tpe_algo(liar=liar)))
            for liar in ("worst", "best", "mean", "none")
        ],
        OptimizerSpec("distopt-custom", "distopt TPE with the settings in $DISTOPT_TPE_SETTINGS (a JSON object)",
                      lambda space, seed: make_distopt(space, seed, _tpe_algo(**_env_settings()))),
        OptimizerSpec("optuna", "optuna TPESampler(seed=s): v5 default (multivariate, constant_liar)",
                      lambda space, seed: make_optuna(space, seed)),
        OptimizerSpec("optuna-cl-mv", "optuna TPESampler(constant_liar=True, multivariate=True, seed=s)",
                      lambda space, seed: make_optuna(space, seed, constant_liar=True, multivariate=True)),
        OptimizerSpec("optuna-indep", "optuna TPESampler(multivariate=False, constant_liar=False): "
                      "the pre-v5 default, running trials ignored",
                      lambda space, seed: make_optuna(space, seed, multivariate=False, constant_liar=False)),
        OptimizerSpec("hyperopt", "hyperopt tpe.suggest, pending trials as NEW/RUNNING docs",
                      lambda space, seed: HyperoptAdapter(space, seed)),
        OptimizerSpec("random", "random search (distopt rand.suggest)",
                      lambda space, seed: make_distopt(space, seed, rand.suggest)),
    ]
}

#: The comparison the targets are about.
MAIN = ("distopt", "optuna", "hyperopt", "random")
