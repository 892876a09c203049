"""The liveness rules, each written once in ``trial.liveness`` and read by the reaper, the
status document and the workers' presence records."""

from __future__ import annotations

from distopt.defaults import HEARTBEAT_TTL, MIN_DROP, WORKER_HEARTBEAT
from distopt.monitor.activity import stale_trials
from distopt.trial.liveness import Deadline, attempt_deadline, dead_after, drop_after, heartbeat_ttl_of, is_dead
from distopt.trial.record import TrialRecord, TrialState


def running(tid: int = 0, attempt: int = 0, start: float | None = 100.0) -> TrialRecord:
    return TrialRecord(tid=tid, vals={"x": 0.5}, state=TrialState.RUNNING, attempt=attempt, start_time=start,
                       refresh_time=90.0, worker="w1")


def test_a_heartbeat_of_the_current_attempt_sets_the_deadline():
    beat = {"attempt": 1, "deadline": 170.0, "worker": "w2"}
    assert attempt_deadline(running(attempt=1), beat, ttl=30) == Deadline(170.0, "heartbeat", "w2")
    # a beat left by an earlier attempt does not count: the start does
    assert attempt_deadline(running(attempt=2), beat, ttl=30) == Deadline(130.0, "start", "w1")


def test_a_running_attempt_without_a_beat_lives_ttl_from_its_start_or_last_update():
    assert attempt_deadline(running(), None, ttl=30) == Deadline(130.0, "start", "w1")
    assert attempt_deadline(running(start=None), None, ttl=30) == Deadline(120.0, "start", "w1")


def test_no_clock_runs_on_a_queued_attempt_without_a_beat_or_on_an_ended_trial():
    queued = TrialRecord(tid=0, vals={}, book_time=10.0)
    assert attempt_deadline(queued, None, ttl=30) is None
    assert attempt_deadline(running().replace(state=TrialState.OK), {"attempt": 0, "deadline": 1.0}, 30) is None


def test_the_status_document_lists_exactly_the_attempts_past_that_deadline():
    records = [running(0), running(1, start=200.0), TrialRecord(tid=2, vals={}, book_time=0.0)]
    beats = {1: {"attempt": 0, "deadline": 140.0, "worker": "w1"}}
    stale = stale_trials(records, beats, now=150.0, ttl=30)
    assert [(s["tid"], s["source"], s["deadline"]) for s in stale] == [(0, "start", 130.0), (1, "heartbeat", 140.0)]


def test_a_study_runs_with_the_given_ttl_else_its_stored_one_else_the_default():
    assert heartbeat_ttl_of({"heartbeat_ttl": 12}, 7.5) == 7.5
    assert heartbeat_ttl_of({"heartbeat_ttl": 12}) == 12.0
    assert heartbeat_ttl_of({"heartbeat_ttl": True}) == heartbeat_ttl_of({}) == HEARTBEAT_TTL


def test_a_worker_is_dead_and_then_dropped_by_its_own_record():
    record = {"beat": 100.0, "interval": 2.0, "dead_after": 3.5, "drop_after": 24.0}
    assert not is_dead(record, 103.4) and is_dead(record, 103.6)
    assert dead_after({}) == WORKER_HEARTBEAT * 1.75 and drop_after({"interval": 0.1}) == MIN_DROP
