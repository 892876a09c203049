"""Reading a study another process ran, as hyperopt users do with MongoTrials: a new
RedisTrials(url, exp_key) holds its trials at once and after refresh(), equal to what the
coordinator saw; load_study is a read-only view; a done study refuses new trials."""

from __future__ import annotations

import pytest

import distopt
from distopt import Study, fmin, hp, space_eval
from distopt.errors import StudyClosed, StudyNotFound
from distopt.trial.record import TrialState
from distopt.redis_trials import RedisTrials
from distopt.storage import RedisStorage
from distopt.worker.pool import WorkerPool

SECRET = "reopen-secret"
SPACE = {"x": hp.uniform("x", -3, 3), "kind": hp.choice("kind", ["a", "b", "c"])}
N = 30


def objective(p):
    return (p["x"] - 1.0) ** 2 + {"a": 0.5, "b": 0.0, "c": 1.0}[p["kind"]]


def test_a_finished_study_reopens_as_the_coordinator_saw_it(redis_url):
    early = RedisTrials(redis_url, exp_key="mon1", secret=SECRET)  # before the study exists
    assert len(early) == 0
    with WorkerPool(redis_url, 2, secret=SECRET.encode(), grace=2.0):
        ran = RedisTrials(redis_url, exp_key="mon1", secret=SECRET)
        best = fmin(objective, SPACE, max_evals=N, trials=ran, parallelism=3, rstate=0, show_progressbar=False)

        reader = RedisTrials(redis_url, exp_key="mon1")  # no secret needed to read
        assert len(reader) == N and reader.trials == ran.trials
        reopened = RedisTrials(redis_url, exp_key="mon1", secret=SECRET)
        assert len(reopened) == len(ran) == N
        assert reopened.trials == ran.trials
        assert reopened.losses() == ran.losses() and reopened.statuses() == ran.statuses()
        assert reopened.best_trial == ran.best_trial and reopened.argmin == ran.argmin == best
        assert reopened.vals == ran.vals and reopened.tids == list(range(N))

        early.refresh()
        assert len(early) == N and early.trials == ran.trials

        view = distopt.load_study(redis_url, "mon1")
        assert len(view) == N and view.status == "done"
        assert view.best_trial.tid == ran.best_trial["tid"] and view.best_loss == ran.best_trial["result"]["loss"]
        assert view.best_params == space_eval(SPACE, best)
        assert not hasattr(view, "ask") and not hasattr(view, "tell")
        assert len(view.to_dataframe()) == N

        # one ask on the done study raises, and leaves nothing behind
        study = Study(SPACE, storage=redis_url, name="mon1")
        with pytest.raises(StudyClosed, match="'mon1' is done .*load_study"):
            study.ask()
        with pytest.raises(StudyClosed):
            study.add_trial({"x": 0.0, "kind": 1}, 0.5)
        stored = RedisStorage(redis_url).get_trials("mon1")
        assert len(stored) == N and all(r.state == TrialState.OK for r in stored)
        assert len(view.refresh()) == N

        # continuing it with a larger budget reopens it
        fmin(objective, SPACE, max_evals=N + 5, trials=reopened, parallelism=2, show_progressbar=False)
        assert len(reopened) == N + 5
        ran.refresh()
        assert len(ran) == N + 5 and ran.trials == reopened.trials


def test_load_study_names_the_studies_that_exist(redis_url):
    RedisStorage(redis_url).create_study("there", {"status": "created"})
    with pytest.raises(StudyNotFound, match="known studies: there"):
        distopt.load_study(redis_url, "missing")
