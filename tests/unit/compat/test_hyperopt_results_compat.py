"""Results, attachments, job states, invalid returns, space changes and pickling behave as
in hyperopt 0.3 (compared against the installed hyperopt where practical)."""

from __future__ import annotations

import logging
import pickle

import numpy as np
import pytest

import distopt
from distopt import STATUS_FAIL, STATUS_OK, Trials, fmin, hp, tpe
from distopt.coordinator.loop import Coordinator, StopRules
from distopt.errors import DistoptError
from distopt.trial.outcome import InvalidLoss, InvalidResult, InvalidResultStatus, InvalidResultType, evaluate
from distopt.trial.record import JOB_STATE_DONE, JOB_STATE_ERROR
from distopt.study.study import Study
from distopt.trials import AllTrialsFailed

hyperopt = pytest.importorskip("hyperopt", reason="hyperopt is a test extra: pip install -e '.[test]'")


def run(lib, fn, space, n, **kw):
    kw.setdefault("show_progressbar", False)
    kw.setdefault("rstate", np.random.default_rng(0))
    return lib.fmin(fn, space, lib.tpe.suggest, n, **kw)


class Model:
    def __init__(self, a: float) -> None:
        self.a = a


# -- 1. extra values stay Python objects ---------------------------------------------

def test_extra_result_values_are_the_returned_objects_without_warnings(caplog):
    made = []

    def fn(x):
        m = Model(x)
        made.append(m)
        return {"loss": x ** 2, "status": STATUS_OK, "model": m, "tup": (1, 2), "arr": np.arange(3),
                "hist": {1: 0.5}, "f32": np.float32(1.5)}

    trials = Trials()
    with caplog.at_level(logging.WARNING):
        run(distopt, fn, hp.uniform("x", -1, 1), 5, trials=trials)
    assert not [r for r in caplog.records if "JSON" in r.getMessage()]
    result = trials.best_trial["result"]
    assert any(result["model"] is m for m in made)
    assert result["tup"] == (1, 2) and isinstance(result["arr"], np.ndarray) and result["hist"] == {1: 0.5}
    assert type(result["f32"]) is np.float32
    assert trials.results[0]["model"] is made[0]
    # the storage keeps the JSON-able form (repr for the model, lists, str keys)
    stored = trials.study.storage.get_trial(trials.study.name, trials.best_trial["tid"]).result
    assert stored["tup"] == [1, 2] and stored["hist"] == {"1": 0.5} and isinstance(stored["model"], str)
    # as hyperopt's documents
    htrials = hyperopt.Trials()
    run(hyperopt, fn, hyperopt.hp.uniform("x", -1, 1), 5, trials=htrials)
    hres = htrials.best_trial["result"]
    assert {k: type(v) for k, v in hres.items()} == {k: type(v) for k, v in result.items()}


def test_raw_results_survive_pickling():
    trials = Trials()
    run(distopt, lambda x: {"loss": x, "status": STATUS_OK, "tup": (x, 1)}, hp.uniform("x", 0, 1), 3, trials=trials)
    loaded = pickle.loads(pickle.dumps(trials))
    assert isinstance(loaded.results[0]["tup"], tuple) and loaded.results == trials.results


def test_workers_keep_the_json_form_and_log_non_json_values(caplog):
    with caplog.at_level(logging.WARNING):
        msg = evaluate(lambda p: {"loss": 1.0, "status": STATUS_OK, "model": Model(1)}, None, tid=0)
    assert isinstance(msg["result"]["model"], str) and "raw_result" not in msg
    assert any("not JSON-serializable" in r.getMessage() for r in caplog.records)


# -- 2. attachments ----------------------------------------------------------------

def _with_attachments(x):
    return {"loss": x ** 2, "status": STATUS_OK,
            "attachments": {"blob": pickle.dumps(np.arange(3)), "txt": "hello"}}


@pytest.mark.parametrize("lib", [distopt, hyperopt])
def test_attachments_are_served_by_trial_attachments(lib):
    trials = lib.Trials()
    run(lib, _with_attachments, lib.hp.uniform("x", -1, 1), 3, trials=trials)
    doc = trials.trials[1]
    assert "attachments" not in doc["result"]
    att = trials.trial_attachments(doc)
    assert "blob" in att and "nope" not in att
    assert list(pickle.loads(att["blob"])) == [0, 1, 2] and att["txt"] == "hello"
    assert f"ATTACH::{doc['tid']}::txt" in trials.attachments
    att["extra"] = b"x"
    assert trials.trial_attachments(doc)["extra"] == b"x"
    del att["extra"]
    assert "extra" not in trials.trial_attachments(doc)


def test_attachments_from_workers_travel_base64_encoded():
    """A worker's message is JSON: bytes attachments are base64-encoded and decoded by the
    coordinator into ``trials.attachments``."""
    from distopt.trial import codec

    trials = Trials()
    study = trials.attach(hp.uniform("x", 0, 1), None, 0)
    (trial,) = study.ask(1)
    msg = evaluate(_with_attachments, trial.params, tid=trial.tid)
    wire = codec.loads(codec.dumps(msg))
    Coordinator(study, executor=None, rules=StopRules()).handle_many([wire], after=False)
    att = trials.trial_attachments(trials.trials[0])
    assert list(pickle.loads(att["blob"])) == [0, 1, 2] and att["txt"] == "hello"
    assert "attachments" not in trials.results[0]


# -- 3. states: a reported failure is DONE, an exception is ERROR (hidden) -------------

def _fail_when_negative(x):
    if x < 0:
        return {"status": STATUS_FAIL, "loss": 99.0, "reason": "neg"}
    return {"loss": x, "status": STATUS_OK}


@pytest.mark.parametrize("lib", [distopt, hyperopt])
def test_reported_failure_is_done_with_its_loss(lib):
    trials = lib.Trials()
    run(lib, _fail_when_negative, lib.hp.uniform("x", -1, 1), 15, trials=trials)
    fails = [d for d in trials.trials if d["result"]["status"] == "fail"]
    assert fails and all(d["state"] == JOB_STATE_DONE for d in fails)
    assert fails[0]["result"] == {"status": "fail", "loss": 99.0, "reason": "neg"}
    assert all(trials.losses()[trials.tids.index(d["tid"])] == 99.0 for d in fails)
    assert len(trials) == 15 and trials.best_trial["result"]["status"] == "ok"


def _raise_when_negative(x):
    if x < 0:
        raise ValueError("neg")
    return x


@pytest.mark.parametrize("lib", [distopt, hyperopt])
def test_raised_trials_are_error_and_left_out_of_trials(lib):
    trials = lib.Trials()
    run(lib, _raise_when_negative, lib.hp.uniform("x", -1, 1), 15, trials=trials, catch_eval_exceptions=True)
    n_error = trials.count_by_state_unsynced(JOB_STATE_ERROR)
    assert n_error > 0 and trials.count_by_state_synced(JOB_STATE_ERROR) == 0
    assert len(trials) == 15 - n_error == len(trials.results) == len(trials.losses())
    assert {d["state"] for d in trials.trials} == {JOB_STATE_DONE}
    assert trials.count_by_state_unsynced([JOB_STATE_DONE, JOB_STATE_ERROR]) == 15
    if lib is distopt:  # distopt's own records keep every failed trial
        study = trials.study
        assert len(study.trials) == 15
        assert sum(r.state.value == "fail" for r in study.trials) == n_error
        assert len(trials.to_dataframe()) == 15


def test_count_by_state_rejects_unknown_states():
    trials = Trials()
    with pytest.raises(DistoptError, match="job state"):
        trials.count_by_state_unsynced(7)


# -- 4. invalid return values raise on the first trial ----------------------------------

INVALID = [
    (lambda x: None, InvalidResultType, "None"),
    (lambda x: "abc", InvalidResultType, "'abc'"),
    (lambda x: np.array(x), InvalidResultType, "ndarray"),
    (lambda x: {"loss": x, "status": "weird"}, InvalidResultStatus, "'weird'"),
    (lambda x: {"status": STATUS_OK}, InvalidLoss, "without a 'loss'"),
    (lambda x: {"status": STATUS_OK, "loss": "abc"}, InvalidLoss, "'abc'"),
]


@pytest.mark.parametrize("fn, kind, named", INVALID)
def test_invalid_results_raise_on_the_first_trial(fn, kind, named):
    trials = Trials()
    with pytest.raises(kind, match=named) as info:
        run(distopt, fn, hp.uniform("x", -1, 1), 5, trials=trials)
    assert isinstance(info.value, (InvalidResult, DistoptError)) and "catch_eval_exceptions" in str(info.value)
    assert len(trials.study.trials) == 1 and len(trials) == 0  # ERROR, as in hyperopt
    htrials = hyperopt.Trials()
    with pytest.raises(Exception):
        run(hyperopt, fn, hyperopt.hp.uniform("x", -1, 1), 5, trials=htrials)
    assert len(htrials) == 0


@pytest.mark.parametrize("fn, kind, named", INVALID)
def test_invalid_results_are_failed_trials_when_caught(fn, kind, named):
    trials = Trials()
    with pytest.raises(DistoptError):  # no trial left to take an argmin from
        run(distopt, fn, hp.uniform("x", -1, 1), 3, trials=trials, catch_eval_exceptions=True)
    assert [r.state.value for r in trials.study.trials] == ["fail"] * 3
    assert all(named in r.error for r in trials.study.trials)
    assert trials.count_by_state_unsynced(JOB_STATE_ERROR) == 3


def test_workers_mark_invalid_results_failed():
    msg = evaluate(lambda p: None, None, tid=0)
    assert msg["status"] == "fail" and not msg["reported"] and "None" in msg["error"] and "raise" not in msg


@pytest.mark.parametrize("value", [True, 1, np.float32(0.5), np.int64(2)])
def test_numbers_and_bools_are_losses_as_in_hyperopt(value):
    trials = Trials()
    run(distopt, lambda x: value, hp.uniform("x", 0, 1), 2, trials=trials)
    assert trials.losses() == [float(value)] * 2 and trials.statuses() == ["ok", "ok"]


def test_non_finite_loss_is_a_reported_failure():
    trials = Trials()
    run(distopt, lambda x: float("nan") if x < 0.5 else x, hp.uniform("x", 0, 1), 10, trials=trials)
    fails = [r for r in trials.study.trials if r.state.value == "fail"]
    assert fails and all("non-finite" in r.error for r in fails)
    assert len(trials) == 10  # reported (hyperopt's DONE), not hidden
    assert all(np.isnan(l) for l, s in zip(trials.losses(), trials.statuses()) if s == "fail")


# -- 5. a new space in a later fmin call --------------------------------------------

@pytest.mark.parametrize("lib", [distopt, hyperopt])
def test_a_later_fmin_uses_its_new_space(lib):
    trials = lib.Trials()
    run(lib, lambda x: x ** 2, lib.hp.uniform("x", -1, 1), 5, trials=trials)
    seen = []
    run(lib, lambda x: seen.append(x) or x ** 2, lib.hp.uniform("x", 10, 11), 10, trials=trials)
    assert len(seen) == 5 and all(10 <= s <= 11 for s in seen) and len(trials) == 10


def test_a_later_fmin_with_a_new_label_keeps_earlier_trials():
    trials = Trials()
    run(distopt, lambda p: p["x"] ** 2, {"x": hp.uniform("x", -1, 1)}, 5, trials=trials)
    space = {"x": hp.uniform("x", -1, 1), "y": hp.choice("y", [0, 1])}
    run(distopt, lambda p: p["x"] ** 2 + p["y"], space, 10, trials=trials)
    assert len(trials) == 10 and trials.tids == list(range(10))
    assert len(trials.vals["y"]) == 5 and len(trials.vals["x"]) == 10
    assert trials.study.space is space and trials.study.n_finished == 10


def test_same_space_again_continues_the_same_study():
    trials = Trials()
    run(distopt, lambda x: x, hp.uniform("x", 0, 1), 3, trials=trials)
    study = trials.study
    run(distopt, lambda x: x, hp.uniform("x", 0, 1), 6, trials=trials)
    assert trials.study is study and len(trials) == 6


# -- 6. pickles hold neither the space nor the algorithm --------------------------------

def test_pickle_without_picklable_space_or_algo(tmp_path):
    space = {"act": hp.choice("act", [lambda v: v, np.tanh]), "x": hp.uniform("x", -1, 1)}
    algo = lambda *a, **k: tpe.suggest(*a, **k)  # noqa: E731

    def fn(p):
        return p["act"](p["x"]) ** 2

    trials = Trials()
    fmin(fn, space, algo, 5, trials=trials, show_progressbar=False, rstate=np.random.default_rng(0))
    loaded = pickle.loads(pickle.dumps(trials))
    assert loaded.study is None
    assert len(loaded) == 5 and loaded.results == trials.results and loaded.losses() == trials.losses()
    assert loaded.best_trial["tid"] == trials.best_trial["tid"] and loaded.argmin == trials.argmin
    assert loaded.vals == trials.vals and len(loaded.trials) == 5
    assert len(loaded.to_dataframe()) == 5
    fmin(fn, space, algo, 8, trials=loaded, show_progressbar=False)
    assert len(loaded) == 8 and loaded.tids == list(range(8))
    path = tmp_path / "t.p"
    fmin(fn, space, algo, 4, trials_save_file=str(path), show_progressbar=False)
    fmin(fn, space, algo, 6, trials_save_file=str(path), show_progressbar=False)
    assert len(pickle.loads(path.read_bytes())) == 6


def test_unpickled_trials_resume_with_the_rng_and_space():
    trials = Trials()
    run(distopt, lambda x: x, hp.uniform("x", 0, 1), 4, trials=trials)
    loaded = pickle.loads(pickle.dumps(trials))
    with pytest.raises(AllTrialsFailed):
        pickle.loads(pickle.dumps(Trials())).best_trial
    fmin(lambda x: x, hp.uniform("x", 0, 1), tpe.suggest, 7, trials=loaded, show_progressbar=False)
    assert len(loaded) == 7 and loaded.study.n_finished == 7


def test_study_fitting_vals_drops_values_outside_the_space():
    study = Study({"x": hp.uniform("x", 0, 1), "c": hp.choice("c", ["a", "b"])})
    assert study.fitting_vals({"x": 0.5, "c": 1, "old": 3}) == {"x": 0.5, "c": 1}
    assert study.fitting_vals({"x": 5.0, "c": 2}) == {}


def test_require_results_names_the_first_error():
    trials = Trials()
    with pytest.raises(DistoptError, match="no evaluation tasks"):
        trials.require_results()
    with pytest.raises(DistoptError):
        run(distopt, _raise_when_negative, hp.uniform("x", -1, -0.5), 3, trials=trials, catch_eval_exceptions=True)
    with pytest.raises(AllTrialsFailed, match=r"no evaluation tasks.*all 3 trials failed.*ValueError: neg"):
        trials.require_results()


def test_study_tell_keeps_the_raw_result_and_attachments():
    study = Study(hp.uniform("x", 0, 1))
    trial = study.ask()
    model = Model(1)
    rec = study.tell(trial, {"loss": 0.5, "status": STATUS_OK, "model": model, "attachments": {"a": b"1"}})
    assert rec.reported and isinstance(rec.result["model"], str) and "attachments" not in rec.result
    assert study.raw_results[trial.tid]["model"] is model and study.attachments[f"ATTACH::{trial.tid}::a"] == b"1"
