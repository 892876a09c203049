"""Both algorithm signatures, either way round.

distopt's samplers take ``(space, history, pending, n, rng)``; hyperopt's take
``(new_ids, domain, trials, seed)`` and return trial documents. ``callable_both_ways``
lets ``tpe.suggest``/``rand.suggest``/``anneal.suggest`` be called hyperopt's way too (from
a user's own suggest function, say), and ``adapt_algo`` lets ``fmin`` run a
hyperopt-signature algorithm (user-written or third-party) as a distopt sampler.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from ..algo.history import History
from ..trial.constants import JOB_STATE_DONE, JOB_STATE_NEW, JOB_STATE_RUNNING, STATUS_NEW, STATUS_OK
from ..errors import AlgoError
from ..space.compile import CompiledSpace, compile_space
from .documents import flat_vals

HYPEROPT_PARAMS = ("new_ids", "domain", "trials", "seed")


def is_hyperopt_algo(algo: Any) -> bool:
    """Whether ``algo`` (or the function a ``functools.partial`` wraps) takes hyperopt's
    ``(new_ids, domain, trials, seed)``."""
    if getattr(algo, "_distopt_native", None) is not None:
        return False
    try:
        names = list(inspect.signature(algo).parameters)
    except (TypeError, ValueError):
        return False
    return tuple(names[:4]) == HYPEROPT_PARAMS


def _documents(trials: Any) -> Sequence[Mapping[str, Any]]:
    docs = getattr(trials, "trials", trials)
    return docs if docs is not None else []


def _view(compiled: CompiledSpace, trials: Any) -> tuple[History, np.ndarray]:
    """History (finished documents) and pending rows (new or running ones) of ``trials``."""
    history = History(compiled)
    pending = []
    for doc in _documents(trials):
        vals = {k: v for k, v in flat_vals(doc).items() if k in compiled}
        if doc["state"] in (JOB_STATE_NEW, JOB_STATE_RUNNING):
            pending.append(history.encode(vals))
        elif doc["state"] == JOB_STATE_DONE:
            result = doc.get("result") or {}
            ok = result.get("status") == STATUS_OK and result.get("loss") is not None
            history.add(vals, float(result["loss"]) if ok else None)
    rows = np.vstack(pending) if pending else np.empty((0, len(compiled)))
    return history, rows


def new_documents(trials: Any, compiled: CompiledSpace, new_ids: Sequence[Any],
                  suggestions: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """hyperopt's documents (state NEW) for suggestions, made by ``trials.new_trial_docs``."""
    miscs = [{
        "tid": tid, "cmd": ("domain_attachment", "FMinIter_Domain"), "workdir": None,
        "idxs": {p.label: ([tid] if p.label in vals else []) for p in compiled},
        "vals": {p.label: ([vals[p.label]] if p.label in vals else []) for p in compiled},
    } for tid, vals in zip(new_ids, suggestions)]
    n = len(miscs)
    results = [{"status": STATUS_NEW} for _ in range(n)]
    make = getattr(trials, "new_trial_docs", None)
    if make is not None:
        return make(list(new_ids)[:n], [None] * n, results, miscs)
    return [{"state": JOB_STATE_NEW, "tid": m["tid"], "spec": None, "result": r, "misc": m, "exp_key": None,
             "owner": None, "version": 0, "book_time": None, "refresh_time": None} for m, r in zip(miscs, results)]


def run_hyperopt_style(native: Callable[..., list], new_ids: Sequence[Any], domain: Any, trials: Any,
                       seed: Any, **settings: Any) -> list[dict[str, Any]]:
    """``native`` called as hyperopt calls an algo: documents for ``new_ids``."""
    expr = getattr(domain, "expr", domain)
    compiled = getattr(domain, "compiled", None) or compile_space(expr)
    history, pending = _view(compiled, trials)
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    ids = list(new_ids)
    suggestions = native(compiled, history, pending, len(ids), rng, **settings) if ids else []
    return new_documents(trials, compiled, ids, suggestions)


def callable_both_ways(native: Callable[..., list]) -> Callable[..., list]:
    """``native`` (distopt's signature), also callable as ``suggest(new_ids, domain,
    trials, seed, **settings)``; its name stays the native one (studies record it)."""

    @functools.wraps(native)
    def suggest(*args: Any, **settings: Any) -> list:
        first = args[0] if args else settings.get("space", settings.get("new_ids"))
        if isinstance(first, CompiledSpace):
            return native(*args, **settings)
        names = [n for n in HYPEROPT_PARAMS if n in settings]
        given = dict(zip(HYPEROPT_PARAMS, args))
        given.update({n: settings.pop(n) for n in names})
        missing = [n for n in HYPEROPT_PARAMS if n not in given]
        if missing:
            raise AlgoError(f"{native.__module__}.suggest called hyperopt's way lacks {missing}; call it as "
                            "suggest(new_ids, domain, trials, seed) or suggest(space, history, pending, n, rng)")
        return run_hyperopt_style(native, given["new_ids"], given["domain"], given["trials"], given["seed"],
                                  **settings)

    suggest._distopt_native = native  # type: ignore[attr-defined]
    return suggest


class HyperoptAlgo:
    """A hyperopt-signature algorithm as a distopt sampler: each ask hands it new ids, a
    ``Domain`` and the ``Trials`` documents, and reads the values off the documents it
    returns."""

    def __init__(self, algo: Callable[..., Any], domain: Any, trials: Any) -> None:
        self.algo = algo
        self.domain = domain
        self.trials = trials
        func = getattr(algo, "func", algo)
        self.__module__ = getattr(func, "__module__", "?")
        self.__qualname__ = getattr(func, "__qualname__", repr(func))

    def __call__(self, space: CompiledSpace, history: History, pending: np.ndarray, n: int,
                 rng: np.random.Generator) -> list[dict[str, Any]]:
        ids = self.trials.new_trial_ids(n)
        docs = self.algo(ids, self.domain, self.trials, int(rng.integers(2**31 - 1)))
        if docs is None or len(docs) == 0:
            raise AlgoError(f"the algo {self.__qualname__} returned no trial documents for ids {ids}")
        return [{k: v for k, v in flat_vals(doc).items()} for doc in docs[:n]]


def adapt_algo(algo: Any, domain: Any, trials: Any) -> Any:
    """``algo`` as distopt's samplers are called (hyperopt-signature ones wrapped)."""
    if algo is not None and is_hyperopt_algo(algo):
        return HyperoptAlgo(algo, domain, trials)
    return algo
