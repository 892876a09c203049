"""Pickled ``Trials`` name ``distopt.trials.Trials``: pickles written before the logic moved
to ``distopt.compat`` load, and new ones keep naming the public path."""

from __future__ import annotations

import pathlib
import pickle
import pickletools

import numpy as np

from distopt import STATUS_OK, Trials, fmin, hp, rand
from distopt.redis_trials import RedisTrials

DATA = pathlib.Path(__file__).parent / "data"


def _globals(data: bytes) -> set[str]:
    """The ``module name`` pairs a pickle imports (protocol 4 STACK_GLOBAL operands)."""
    strings = [arg for op, arg, _ in pickletools.genops(data) if isinstance(arg, str)]
    return {f"{m} {n}" for m, n in zip(strings, strings[1:])}


def test_a_pickle_written_before_the_move_loads_and_continues():
    data = (DATA / "trials_before_compat_move.pkl").read_bytes()
    assert "distopt.trials Trials" in _globals(data)
    trials = pickle.loads(data)
    assert isinstance(trials, Trials)
    assert len(trials) == 4 and trials.argmin == {"x": 0.750572799628002}
    fmin(lambda x: {"loss": (x - 1) ** 2, "status": STATUS_OK}, hp.uniform("x", -3, 3), algo=rand.suggest,
         max_evals=6, trials=trials, rstate=np.random.default_rng(1), show_progressbar=False)
    assert len(trials) == 6 and [d["tid"] for d in trials.trials] == list(range(6))


def test_new_pickles_name_the_public_import_paths():
    trials = Trials()
    fmin(lambda x: x ** 2, hp.uniform("x", -1, 1), algo=rand.suggest, max_evals=2, trials=trials,
         show_progressbar=False)
    found = _globals(pickle.dumps(trials, protocol=4))
    assert "distopt.trials Trials" in found
    assert not any(g.startswith("distopt.compat") for g in found), found
    assert RedisTrials.__module__ == "distopt.redis_trials"
