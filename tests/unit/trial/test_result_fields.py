"""A result message becomes a trial record by one rule (``result_fields`` then
``finished_record``), whoever records it: the coordinator, ``Study.tell``, ``distopt cancel``."""

from __future__ import annotations

from distopt import hp
from distopt.study.study import Study
from distopt.trial.outcome import evaluate, interpret
from distopt.trial.record import TrialRecord, TrialState, finished_record, result_fields


def test_a_traceback_joins_the_error_and_a_pruned_message_ends_pruned():
    fields = result_fields({"tid": "3", "status": "fail", "loss": None, "error": "ValueError: x",
                            "traceback": "Traceback ...", "reported": False})
    assert fields["tid"] == 3 and not fields["ok"] and fields["error"] == "ValueError: x\nTraceback ..."
    old = TrialRecord(tid=3, vals={"x": 1.0}, state=TrialState.RUNNING, worker="w")
    pruned = finished_record(old, result_fields({"tid": 3, "status": "pruned", "last_step": 4, "last_value": 0.5}),
                             now=10.0)
    assert pruned.state == TrialState.PRUNED and pruned.result["last_step"] == 4 and pruned.worker == "w"


def test_tell_and_a_worker_message_make_the_same_record():
    value = {"loss": 0.25, "status": "ok", "note": "n"}
    told = Study(hp.uniform("x", 0, 1), seed=1)
    trial = told.ask()
    by_tell = told.tell(trial, value)
    sent = Study(hp.uniform("x", 0, 1), seed=1)
    other = sent.ask()
    msg = interpret(value).message(other.tid, 0, end_time=by_tell.end_time)
    (by_message,) = sent.record_results([result_fields(msg)])
    def same(rec: TrialRecord) -> TrialRecord:
        return rec.replace(book_time=None, refresh_time=None)

    assert same(by_message) == same(by_tell) and by_tell.state == TrialState.OK and by_tell.result["note"] == "n"


def test_the_message_evaluate_sends_is_the_outcome_message():
    msg = evaluate(lambda p: {"loss": 1.0, "status": "ok"}, None, tid=2, attempt=1, worker="w", clock=lambda: 5.0)
    assert msg == interpret({"loss": 1.0, "status": "ok"}).message(
        2, 1, traceback=None, worker="w", start_time=5.0, end_time=5.0, reported=True)


def test_a_cancel_ends_exactly_the_trials_that_have_not_ended():
    from distopt.trial.record import CANCELLABLE, cancelled_record

    assert set(CANCELLABLE) == {TrialState.QUEUED, TrialState.RUNNING, TrialState.LOST}
    rec = cancelled_record(TrialRecord(tid=1, vals={}, state=TrialState.LOST, attempt=2), now=7.0)
    assert rec.state == TrialState.CANCELLED and rec.refresh_time == 7.0 and rec.attempt == 2


def test_labels_of_other_trials_follow_the_studys_own():
    from distopt.trial.record import with_labels

    records = [TrialRecord(tid=0, vals={"b": 1, "z": 2}), TrialRecord(tid=1, vals={"y": 3, "a": 4})]
    assert with_labels(["a", "b"], records) == ["a", "b", "z", "y"]
