"""hyperopt code that uses its less common import paths and helpers runs after changing
only the import."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from distopt import Trials, fmin, hp, space_eval, tpe
from distopt.errors import AlgoError, SpaceError


def test_hyperopt_module_paths_exist():
    from distopt.exceptions import AllTrialsFailed
    from distopt.fmin import generate_trials_to_calculate
    from distopt.pyll.base import scope

    import distopt

    assert AllTrialsFailed is distopt.AllTrialsFailed
    assert generate_trials_to_calculate is distopt.generate_trials_to_calculate
    assert scope is distopt.pyll.scope


def test_scope_define_builds_an_expression_evaluated_with_the_sampled_values():
    from distopt.pyll.base import scope

    @scope.define
    def layer_sizes(first, n):
        return [int(first) // 2**i for i in range(int(n))]

    assert layer_sizes(64, 2) == [64, 32]  # the decorator returns the function itself
    space = {"sizes": scope.layer_sizes(hp.quniform("first", 16, 128, 16), 3),
             "lr": scope.max(hp.loguniform("lr", -5, 0), 0.01)}
    assert space_eval(space, {"first": 64.0, "lr": 0.001}) == {"sizes": [64, 32, 16], "lr": 0.01}
    trials = Trials()
    best = fmin(lambda p: p["sizes"][-1] + p["lr"], space, algo=tpe.suggest, max_evals=8, trials=trials,
                rstate=np.random.default_rng(0), show_progressbar=False)
    assert len(space_eval(space, best)["sizes"]) == 3


def test_scope_define_rejects_what_it_cannot_name():
    from distopt.pyll import scope

    with pytest.raises(SpaceError, match="named function"):
        scope.define(lambda x: x)
    with pytest.raises(SpaceError, match="needs a function"):
        scope.define(3)


def test_choice_over_a_numpy_array_as_in_many_tutorials():
    space = {"max_depth": hp.choice("max_depth", np.arange(1, 14, dtype=int))}
    best = fmin(lambda p: abs(p["max_depth"] - 5), space, algo=tpe.suggest, max_evals=30,
                rstate=np.random.default_rng(0), show_progressbar=False)
    value = space_eval(space, best)["max_depth"]
    assert value == 5 and isinstance(value, int)
    with pytest.raises(SpaceError, match="1-D array"):
        hp.choice("grid", np.zeros((2, 2)))


def test_hyperopt_only_tpe_arguments_are_accepted():
    algo = functools.partial(tpe.suggest, verbose=False, n_startup_jobs=3)
    fmin(lambda x: x, hp.uniform("x", 0, 1), algo=algo, max_evals=5, rstate=np.random.default_rng(0),
         show_progressbar=False)
    with pytest.raises(AlgoError, match="unknown setting"):
        fmin(lambda x: x, hp.uniform("x", 0, 1), algo=functools.partial(tpe.suggest, verbos=False),
             max_evals=2, rstate=np.random.default_rng(0), show_progressbar=False)
