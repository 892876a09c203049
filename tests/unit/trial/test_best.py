""""Best trial" is one rule (``trial.record.may_be_best`` and ``improves``): for a study's
records, a snapshot, and hyperopt's documents inserted by hand."""

from __future__ import annotations

import math

from distopt import STATUS_OK, Trials, trials_from_docs
from distopt.trial.record import TrialRecord, TrialState, best_of, may_be_best


def doc(tid: int, loss: float) -> dict:
    return {"state": 2, "tid": tid, "spec": None, "result": {"status": STATUS_OK, "loss": loss},
            "misc": {"tid": tid, "cmd": None, "workdir": None, "idxs": {"x": [tid]}, "vals": {"x": [float(tid)]}},
            "exp_key": None, "owner": None, "version": 0, "book_time": None, "refresh_time": None}


def test_only_an_ok_trial_with_a_finite_loss_may_be_best():
    assert may_be_best(True, 0.0) and may_be_best(True, -1e300)
    assert not any(may_be_best(True, v) for v in (None, math.nan, math.inf, -math.inf))
    assert not may_be_best(False, 0.0)


def test_records_and_inserted_documents_agree_on_the_best():
    losses = [-math.inf, 0.5, math.nan, 0.5, 0.25, math.inf]
    records = [TrialRecord(tid=i, vals={"x": float(i)}, state=TrialState.OK, loss=v) for i, v in enumerate(losses)]
    assert best_of(records).tid == 4
    trials: Trials = trials_from_docs([doc(i, v) for i, v in enumerate(losses)])
    assert trials.best_trial["tid"] == 4
