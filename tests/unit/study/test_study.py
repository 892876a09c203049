"""Ask/tell: pending trials, exactly-once results, warm starts."""

import numpy as np
import pytest

from distopt import Study, hp, rand
from distopt.errors import TrialError
from distopt.trial.record import TrialState


def make(**kw):
    return Study({"x": hp.uniform("x", -2, 2), "c": hp.choice("c", ["a", "b"])}, algo=rand.suggest, seed=1, **kw)


def test_many_asks_are_pending_until_told():
    study = make()
    trials = study.ask(5)
    assert [t.tid for t in trials] == list(range(5))
    assert study.n_pending == 5 and study.pending_array().shape == (5, 2)
    study.tell(trials[2], 0.5)
    study.tell(trials[0].tid, {"loss": 0.25, "status": "ok"})
    assert study.n_pending == 3 and study.n_finished == 2
    assert study.best_trial.tid == 0 and study.best_trial.loss == 0.25
    assert study.best_params == trials[0].params
    assert trials[0].params["c"] in ("a", "b")


def test_a_result_is_recorded_once():
    study = make()
    t = study.ask()
    study.tell(t, 1.0)
    with pytest.raises(TrialError, match="trial 0 cannot take a result: it is ok"):
        study.tell(t, 0.0)
    assert study.record_result(t.tid, 0, True, 0.0, {}) is None
    assert study.n_finished == 1 and study.best_trial.loss == 1.0


def test_add_trial_warm_start():
    study = make()
    rec = study.add_trial({"x": 0.1, "c": 1}, 0.3)
    assert rec.state == TrialState.OK and study.best_params == {"x": 0.1, "c": "b"}
    with pytest.raises(TrialError, match="missing \\['c'\\]"):
        study.add_trial({"x": 0.1}, 0.3)
    with pytest.raises(TrialError, match="unknown \\['zz'\\]"):
        study.add_trial({"x": 0.1, "c": 0, "zz": 1}, 0.3)


def test_lost_trials_leave_pending_and_are_requeued():
    study = make()
    t = study.ask()
    assert study.mark_running(t.tid, 0, "w1", 1.0)
    assert study.mark_lost(t.tid, 0, "heartbeat expired") is not None
    assert study.n_pending == 0
    rec = study.requeue(t.tid)
    assert rec.state == TrialState.QUEUED and rec.attempt == 1 and study.n_pending == 1
    assert not study.mark_running(t.tid, 0, "w1", 2.0)  # stale attempt


def test_same_seed_same_suggestions():
    a, b = make(), make()
    assert [t.vals for t in a.ask(4)] == [t.vals for t in b.ask(4)]


def test_study_reloads_from_storage():
    from distopt.storage import MemoryStorage

    storage = MemoryStorage()
    s1 = make(storage=storage, name="exp1")
    t = s1.ask(3)
    s1.tell(t[0], 2.0)
    s2 = make(storage=storage, name="exp1")
    assert s2.n_finished == 1 and s2.n_pending == 2 and s2.best_trial.loss == 2.0
    assert s2.ask().tid == 3


def test_bad_study_name():
    with pytest.raises(Exception, match="bad:name"):
        make(name="bad:name")


def test_ask_n_must_be_positive():
    with pytest.raises(TrialError, match="n >= 1"):
        make().ask(0)
