"""hyperopt's other algorithms on real workers: anneal, mix and a hyperopt-signature algo
run through RedisTrials the same way as in-process."""

import functools

import pytest

from distopt import anneal, fmin, hp, mix, rand, tpe
from distopt.trial.record import TrialState
from distopt.redis_trials import RedisTrials
from distopt.storage import RedisStorage
from distopt.worker.pool import WorkerPool

SECRET = "integration-secret"


def bowl(p):
    return (p["x"] - 1.0) ** 2 + (0.0 if p["c"] == "a" else 1.0)


def hyperopt_style(new_ids, domain, trials, seed):
    return anneal.suggest(new_ids, domain, trials, seed, shrink_coef=0.2)


@pytest.mark.parametrize("name,algo", [
    ("anneal", anneal.suggest),
    ("mix", functools.partial(mix.suggest, p_suggest=[(0.2, rand.suggest), (0.8, tpe.suggest)])),
    ("hyperopt-style", hyperopt_style),
])
def test_algo_runs_on_workers(redis_url, name, algo):
    space = {"x": hp.uniform("x", -5, 5), "c": hp.choice("c", ["a", "b"])}
    with WorkerPool(redis_url, 2, secret=SECRET.encode()):
        trials = RedisTrials(redis_url, exp_key=name, secret=SECRET)
        best = fmin(bowl, space, algo=algo, max_evals=30, trials=trials, parallelism=3, rstate=0,
                    timeout=120, show_progressbar=False)
    records = RedisStorage(redis_url).get_trials(name)
    assert len(records) == 30 and all(r.state == TrialState.OK for r in records)
    assert len(trials) == 30 and best["c"] == 0 and abs(best["x"] - 1.0) < 1.5
