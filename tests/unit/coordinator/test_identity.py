"""A worker's message lands only on the trial it evaluated: same study incarnation, same
parameters."""

from __future__ import annotations

from distopt import hp
from distopt.coordinator.loop import Coordinator, StopRules
from distopt.trial.record import TrialState, vals_digest
from distopt.study.study import Study


class NoJobs:
    def submit(self, study, trials):
        pass

    def wait(self, timeout):
        return []

    def cancel(self, study, tids):
        return []


def result(trial, study, **over):
    msg = {"tid": trial.tid, "attempt": 0, "status": "ok", "loss": 0.5, "result": {"loss": 0.5, "status": "ok"},
           "incarnation": study.incarnation, "params": vals_digest(trial.vals)}
    msg.update(over)
    return msg


def test_messages_of_another_incarnation_or_other_parameters_are_dropped(caplog):
    study = Study(hp.uniform("x", 0, 1), name="ident", seed=0)
    assert study.incarnation and len(study.incarnation) == 32
    coordinator = Coordinator(study, NoJobs(), StopRules(max_evals=10))
    a, b, c = study.ask(3)
    assert coordinator.handle_many([result(a, study, incarnation="0" * 32)]) == 0
    assert coordinator.handle_many([result(b, study, params=vals_digest({"x": 0.123}))]) == 0
    assert coordinator.handle({"type": "started", "tid": c.tid, "attempt": 0, "incarnation": "f" * 32}) is False
    assert [study.record(t.tid).state for t in (a, b, c)] == [TrialState.QUEUED] * 3
    assert "another incarnation" in caplog.text and "other parameters" in caplog.text
    assert coordinator.handle_many([result(a, study), result(b, study)]) == 2
    assert study.record(a.tid).state == study.record(b.tid).state == TrialState.OK


def test_the_digest_depends_on_the_values_only():
    assert vals_digest({"x": 1.0, "y": 2}) == vals_digest({"y": 2, "x": 1.0}) != vals_digest({"x": 1.5, "y": 2})
