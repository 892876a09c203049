"""Batch writes (``put_trials``, ``transition_many``): the same results as one at a time,
on memory, fakeredis and a real Redis."""

import pytest

from distopt.errors import StudyNotFound
from distopt.trial.record import TrialRecord, TrialState
from distopt.storage import MemoryStorage, RedisStorage
from distopt.storage.redis.pipelined import PipelinedRedisStorage

Q, R, OK, FAIL = TrialState.QUEUED, TrialState.RUNNING, TrialState.OK, TrialState.FAIL


@pytest.fixture(params=["memory", "fakeredis", "redis"])
def storage(request):
    if request.param == "memory":
        yield MemoryStorage()
    elif request.param == "fakeredis":
        yield PipelinedRedisStorage(request.getfixturevalue("fake_redis"))
    else:
        store = PipelinedRedisStorage(request.getfixturevalue("redis_url"))
        yield store
        store.close()


def test_put_trials_stores_a_batch(storage):
    storage.create_study("s", {})
    storage.put_trials("s", [TrialRecord(tid=i, vals={"x": i / 10}) for i in range(5)])
    storage.put_trials("s", [])
    assert [r.tid for r in storage.get_trials("s")] == list(range(5))
    assert storage.count_states("s")[Q] == 5


def test_transition_many_is_a_compare_and_set_per_change(storage):
    storage.create_study("s", {})
    storage.put_trials("s", [TrialRecord(tid=i, vals={"x": 0.0}) for i in range(4)])
    storage.transition("s", 3, Q, TrialRecord(tid=3, vals={"x": 0.0}, state=R, attempt=0))
    done = lambda tid, state=OK: TrialRecord(tid=tid, vals={"x": 0.0}, state=state, loss=1.0)
    won = storage.transition_many("s", [
        (0, Q, done(0), None),          # ok
        (1, R, done(1), None),          # wrong expected state
        (2, Q, done(2, FAIL), 5),       # wrong attempt
        (3, [Q, R], done(3), 0),        # ok, from RUNNING
    ])
    assert won == [True, False, False, True]
    states = {r.tid: r.state for r in storage.get_trials("s")}
    assert states == {0: OK, 1: Q, 2: Q, 3: OK}
    assert storage.count_states("s")[OK] == 2 and storage.count_states("s")[Q] == 2
    assert storage.transition_many("s", [(0, Q, done(0), None)]) == [False]  # ended: no second result
    assert storage.transition_many("s", []) == []


def test_batches_on_a_missing_study_name_it(storage):
    with pytest.raises(StudyNotFound):
        storage.put_trials("nope", [TrialRecord(tid=0, vals={})])
    with pytest.raises(StudyNotFound):
        storage.transition_many("nope", [(0, Q, TrialRecord(tid=0, vals={}, state=OK), None)])


def test_plain_redis_storage_has_the_same_batch_methods(fake_redis):
    storage = RedisStorage(fake_redis)
    storage.create_study("s", {})
    storage.put_trials("s", [TrialRecord(tid=0, vals={})])
    assert storage.transition_many("s", [(0, Q, TrialRecord(tid=0, vals={}, state=OK), None)]) == [True]


def test_batches_survive_a_script_flush(storage):
    if isinstance(storage, MemoryStorage):
        return
    storage.create_study("s", {})
    storage.client.script_flush()
    storage.put_trials("s", [TrialRecord(tid=0, vals={}), TrialRecord(tid=1, vals={})])
    storage.client.script_flush()
    won = storage.transition_many("s", [(t, Q, TrialRecord(tid=t, vals={}, state=OK), None) for t in (0, 1)])
    assert won == [True, True]


def test_study_records_a_batch_of_results_once_each(storage):
    from distopt import hp
    from distopt.study.study import Study

    study = Study(hp.uniform("x", 0, 1), storage=storage, name="batch", seed=0)
    a, b, c = study.ask(3)
    res = lambda t, loss, ok=True: {"tid": t.tid, "attempt": 0, "ok": ok, "loss": loss, "result": {"loss": loss}}
    out = study.record_results([res(a, 0.5), res(b, 0.2), res(a, 0.1), res(c, None, ok=False)])
    assert [r is not None for r in out] == [True, True, False, True]  # a's second result ignored
    assert study.n_finished == 3 and study.best_trial.tid == b.tid and study.best_trial.loss == 0.2
    assert study.record_results([res(b, 0.0)]) == [None]  # already ended
    stored = {r.tid: r for r in storage.get_trials("batch")}
    assert stored[a.tid].loss == 0.5 and stored[c.tid].state == FAIL


def test_coordinator_runs_early_stop_after_each_result_of_a_batch():
    from distopt import hp
    from distopt.coordinator.loop import Coordinator, StopRules
    from distopt.study.study import Study

    calls = []

    def early_stop(view, *args):
        calls.append(study.n_finished)
        return False, []

    study = Study(hp.uniform("x", 0, 1), seed=0)
    coord = Coordinator(study, executor=None, rules=StopRules(early_stop_fn=early_stop), parallelism=3)
    trials = study.ask(3)
    msgs = [{"tid": t.tid, "attempt": 0, "status": "ok", "loss": 1.0} for t in trials]
    assert coord.handle_many([{"type": "started", "tid": trials[0].tid, "attempt": 0}] + msgs) == 3
    assert len(calls) == 3


def test_add_trials_reserves_ids_and_stores_in_one_call(storage):
    if not isinstance(storage, PipelinedRedisStorage):
        return
    storage.create_study("s", {})
    build = lambda first, n=3: [TrialRecord(tid=first + i, vals={"x": i}) for i in range(n)]
    assert [r.tid for r in storage.add_trials("s", 3, build)] == [0, 1, 2]
    assert [r.tid for r in storage.add_trials("s", 3, build)] == [3, 4, 5]
    assert storage.next_tid("s", 2) == 6  # someone else reserves ids: the next batch follows them
    assert [r.tid for r in storage.add_trials("s", 3, build)] == [8, 9, 10]
    assert storage.next_tid("s") == 11
    assert [r.tid for r in storage.get_trials("s")] == [0, 1, 2, 3, 4, 5, 8, 9, 10]
    assert storage.count_states("s")[Q] == 9
    with pytest.raises(StudyNotFound):
        storage.add_trials("nope", 1, build)


def test_add_trials_sent_again_after_a_lost_reply_stores_once(storage):
    if not isinstance(storage, PipelinedRedisStorage):
        pytest.skip("only the pipelined class reserves ids and stores a batch in one script call")

    storage.create_study("s", {})
    recs = [TrialRecord(tid=i, vals={"x": i}) for i in range(2)]
    assert storage._put_batch("s", recs, 0) == 1
    assert storage._put_batch("s", recs, 0) == 1  # the same batch again: found, not stored twice
    assert storage._put_batch("s", [TrialRecord(tid=0, vals={"x": 9})], 0) == -2
    assert storage.next_tid("s") == 2


def test_transition_many_after_a_script_flush_on_a_study_made_elsewhere(storage):
    if isinstance(storage, MemoryStorage):
        return
    storage.create_study("s", {})
    storage.put_trials("s", [TrialRecord(tid=0, vals={})])
    storage.client.script_flush()
    assert storage.transition_many("s", [(0, [Q, R], TrialRecord(tid=0, vals={}, state=OK), 0),
                                         (0, Q, TrialRecord(tid=0, vals={}, state=FAIL), None)]) == [True, False]
