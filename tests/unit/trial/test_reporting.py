"""report/should_prune in-process: pruned trials end PRUNED, count toward max_evals, and
feed the sampler; reports outside a trial do nothing."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import distopt
from distopt import Study, Trials, TrialPruned, fmin, hp, report, should_prune, tpe
from distopt.algo import History
from distopt.algo._layout import layout, observed
from distopt.errors import PrunerError, TrialError
from distopt.study.rows import trials_rows
from distopt.pruners import MedianPruner, SuccessiveHalvingPruner
from distopt.trial.record import JOB_STATE_DONE, TrialState
from distopt.space import compile_space
from distopt.study.snapshot import as_snapshot

SPACE = {"x": hp.uniform("x", -5, 5)}
STEPS = 20


def counting_objective(counter):
    def objective(p):
        v = None
        for step in range(STEPS):
            counter.append(step)
            v = (p["x"] - 1) ** 2 + float(np.exp(-0.3 * step))
            report(step, v)
        return v
    return objective


def run(pruner, max_evals=40, seed=0):
    steps: list[int] = []
    trials = Trials()
    fmin(counting_objective(steps), SPACE, algo=tpe.suggest, max_evals=max_evals, trials=trials, pruner=pruner,
         rstate=np.random.default_rng(seed), show_progressbar=False)
    return trials, steps


@pytest.mark.parametrize("pruner", ["median", "asha", "hyperband", MedianPruner(n_startup_trials=3)])
def test_fmin_with_a_pruner_prunes_and_counts_every_trial(pruner):
    trials, steps = run(pruner)
    states = [r.state for r in trials.study.trials]
    n_pruned = states.count(TrialState.PRUNED)
    assert len(states) == 40 and states.count(TrialState.OK) + n_pruned == 40
    assert n_pruned >= 5
    assert len(steps) < 40 * STEPS
    for rec in trials.study.trials:
        curve = trials.study.curves()[rec.tid]
        if rec.state == TrialState.PRUNED:
            assert rec.loss is None and rec.result["last_step"] == curve.steps[-1] < STEPS - 1
            assert rec.result["last_value"] == curve.values[-1]
        else:
            assert curve.steps == list(range(STEPS)) and rec.loss == curve.values[-1]
    assert trials.study.n_finished == 40 and trials.study.n_pruned == n_pruned
    # hyperopt's view: a pruned trial is a finished document with status 'fail'
    docs = [d for d in trials.trials if d["result"].get("pruned")]
    assert len(docs) == n_pruned and all(d["state"] == JOB_STATE_DONE and d["result"]["status"] == "fail"
                                         for d in docs)
    assert abs(trials.argmin["x"] - 1) < 0.5


def test_without_a_pruner_every_trial_runs_to_the_end_and_keeps_its_curve():
    trials, steps = run(None, max_evals=12)
    assert len(steps) == 12 * STEPS
    assert all(r.state == TrialState.OK for r in trials.study.trials)
    rows = trials_rows(trials.study.trials, ["x"], curves=as_snapshot(trials).curves, intermediate=True)
    assert all(r["last_step"] == STEPS - 1 and len(r["intermediate_values"]) == STEPS for r in rows)


def test_should_prune_lets_the_objective_clean_up_first():
    cleaned = []

    def objective(p):
        for step in range(STEPS):
            if report(step, (p["x"] - 1) ** 2 + 1.0 / (step + 1), raise_pruned=False):
                assert should_prune()
                cleaned.append(step)
                raise TrialPruned()
            assert not should_prune()
        return (p["x"] - 1) ** 2

    trials = Trials()
    fmin(objective, SPACE, max_evals=30, trials=trials, pruner=MedianPruner(n_startup_trials=2),
         rstate=np.random.default_rng(3), show_progressbar=False)
    pruned = [r for r in trials.study.trials if r.state == TrialState.PRUNED]
    assert pruned and len(cleaned) == len(pruned)


def test_an_objective_may_raise_trial_pruned_itself():
    def objective(p):
        if p["x"] > 0:
            raise TrialPruned("not worth it")
        return p["x"] ** 2

    trials = Trials()
    fmin(objective, SPACE, max_evals=10, trials=trials, rstate=np.random.default_rng(0), show_progressbar=False)
    pruned = [r for r in trials.study.trials if r.state == TrialState.PRUNED]
    assert pruned and all(r.result["last_step"] is None for r in pruned)
    assert trials.study.n_finished == 10


def test_report_outside_a_trial_warns_once_and_does_nothing(monkeypatch):
    monkeypatch.setattr(distopt.trial.reporting, "_warned", False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert report(0, 1.0) is False
        assert report(1, 2.0) is False
        assert should_prune() is False
    assert len(caught) == 1 and "outside a trial" in str(caught[0].message)


def test_bad_reports_fail_the_trial_naming_the_value():
    def objective(p):
        report("first", 1.0)
        return 0.0

    trials = Trials()
    fmin(objective, SPACE, max_evals=1, trials=trials, catch_eval_exceptions=True, show_progressbar=False,
         return_argmin=False)
    (rec,) = trials.study.trials
    assert rec.state == TrialState.FAIL and "whole step" in rec.error
    with pytest.raises(TrialError, match="number for value"):
        fmin(lambda p: report(0, "high"), SPACE, max_evals=1, show_progressbar=False)


def test_study_keeps_its_pruner_and_rejects_unknown_ones():
    study = Study(SPACE, pruner="asha", name="keep")
    assert isinstance(study.pruner, SuccessiveHalvingPruner)
    again = Study(SPACE, storage=study.storage, name="keep")
    assert again.pruner == study.pruner
    assert study.storage.get_study("keep")["pruner"]["name"] == "asha"
    with pytest.raises(PrunerError, match="unknown pruner 'fast'"):
        Study(SPACE, pruner="fast")


def test_tpe_ranks_pruned_trials_after_complete_ones_by_progress():
    space = compile_space(SPACE)
    h = History(space)
    h.add({"x": 0.0}, 5.0)
    h.add({"x": 1.0}, 1.0)
    h.add_pruned({"x": 2.0}, 3, 0.5)   # got to step 3
    h.add_pruned({"x": 3.0}, 9, 7.0)   # got further: ranks before the one above despite its value
    h.add_pruned({"x": 4.0}, 9, 6.0)
    h.add({"x": -1.0}, None)           # failed: not used
    obs = observed(layout(space, True), h)
    assert obs.losses[:2].tolist() == [1.0, 5.0]
    assert len(obs.losses) == 5 and (obs.losses[2:] > 7.0).all()
    xs = obs.Z[:, 0].tolist()
    assert xs == [1.0, 0.0, 4.0, 3.0, 2.0]
    assert h.n_used == 5 and h.n_pruned == 3


def test_pruned_trials_count_toward_the_tpe_startup():
    space = compile_space(SPACE)
    h = History(space)
    for i in range(10):
        h.add_pruned({"x": float(i % 5)}, i, float(i))
    rng = np.random.default_rng(0)
    # with 10 pruned trials the model is fitted (no start-up design), and it runs
    (s,) = tpe.suggest(space, h, np.empty((0, 1)), 1, rng)
    assert -5 <= s["x"] <= 5


def test_a_report_is_one_round_trip_to_redis(fake_redis, monkeypatch):
    from distopt.trial.reporting import Reporter
    from distopt.storage import RedisStorage

    storage = RedisStorage(fake_redis)
    study = Study(SPACE, storage=storage, name="trip", pruner="median")
    trials = study.ask(3)
    reporters = [Reporter(storage, "trip", t.tid, t.attempt, study.pruner) for t in trials]
    reporters[0].report(0, 1.0)  # the first call also loads the script
    calls = []
    real = fake_redis.execute_command
    monkeypatch.setattr(fake_redis, "execute_command", lambda *a, **kw: calls.append(a[0]) or real(*a, **kw))
    for step in range(1, 4):
        for r in reporters:
            r.report(step, 1.0 + r.tid)
    assert calls == ["EVALSHA"] * 9


def test_distopt_trials_exports_the_curves(redis_url):
    import csv
    import io
    import json

    from click.testing import CliRunner

    from distopt.cli import main
    from distopt.storage import RedisStorage

    storage = RedisStorage(redis_url)
    study = Study(SPACE, storage=storage, name="curves", pruner="median")
    a, b = study.ask(2)
    for step in range(3):
        storage.report("curves", a.tid, 0, step, 3.0 - step)
    storage.report("curves", b.tid, 0, 0, 9.0)
    study.tell(a, 1.0)
    study.record_results([{"tid": b.tid, "attempt": 0, "ok": False, "loss": None, "result": {}, "pruned": True,
                           "last_step": 0, "last_value": 9.0}])
    out = CliRunner().invoke(main, ["trials", "--redis", redis_url, "--study", "curves"])
    assert out.exit_code == 0, out.output
    rows = list(csv.DictReader(io.StringIO(out.output)))
    assert [(r["state"], r["last_step"], r["last_value"]) for r in rows] == [("ok", "2", "1.0"), ("pruned", "0", "9.0")]
    out = CliRunner().invoke(main, ["trials", "--redis", redis_url, "--study", "curves", "--format", "json"])
    doc = json.loads(out.output)
    assert doc[0]["intermediate_values"] == [[0, 3.0], [1, 2.0], [2, 1.0]] and doc[1]["state"] == "pruned"
    status = CliRunner().invoke(main, ["status", "--redis", redis_url, "--study", "curves", "--json"])
    assert json.loads(status.output)["studies"]["curves"]["counts"]["pruned"] == 1


def test_ask_tell_with_reports_and_pruned_trials():
    study = Study(SPACE, seed=0, pruner=MedianPruner(n_startup_trials=1))
    first, second = study.ask(2)
    for step in range(3):
        assert not study.report(first, step, 3.0 - step)
    study.tell(first, 1.0)
    assert not study.report(second, 0, 2.5)  # better than trial 0's 3.0 at step 0
    assert study.report(second, 1, 2.5)  # its best, 2.5, is worse than trial 0's 2.0 at step 1
    rec = study.tell_pruned(second)
    assert rec.state == TrialState.PRUNED and rec.result["last_step"] == 1 and rec.result["last_value"] == 2.5
    assert study.n_finished == 2 and study.n_pruned == 1
    with pytest.raises(TrialError, match="cannot be pruned: it is pruned"):
        study.tell_pruned(second)


def test_a_reporter_rebuilds_only_the_curves_that_changed():
    """A storage hands back the same stored curve while it is unchanged: the pruner gets the
    curve built before (no rebuild per report), and a changed or replaced one built anew."""
    from distopt.pruners import Pruner
    from distopt.storage.base import CurveData, ReportReply
    from distopt.trial.reporting import Reporter

    seen = []

    class Recording(Pruner):
        name = "recording"

        def prune(self, snapshot):
            seen.append(dict(snapshot.curves))
            return False

        def options(self):
            return {}

    other, stale = CurveData(0, [0, 1], [3.0, 2.0]), CurveData(0, [0], [5.0])
    replies = iter([
        {1: CurveData(0, [0], [1.0]), 2: other, 3: stale},
        {1: CurveData(0, [0, 1], [1.0, 0.5]), 2: other, 3: CurveData(0, [0, 1], [5.0, 4.0])},
        {1: CurveData(1, [0], [9.0]), 2: other},  # another attempt of this trial: not this reporter's curve
    ])

    class Storage:
        def report(self, study, tid, attempt, step, value, want):
            return ReportReply(True, next(replies), 0)

    rep = Reporter(Storage(), "s", 1, 0, pruner=Recording())
    rep.report(0, 1.0)
    rep.report(1, 0.5)
    first, second = seen
    assert second[2] is first[2]  # unchanged: the same Curve
    assert second[3] is not first[3] and list(second[3].values) == [5.0, 4.0]
    assert list(second[1].steps) == [0, 1]
    rep.report(2, 0.25)  # the reply's curve of trial 1 is another attempt's: the pruner is not asked
    assert len(seen) == 2
