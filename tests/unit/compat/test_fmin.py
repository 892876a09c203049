"""fmin in-process: hyperopt's behaviour, stop rules, results, errors."""

import functools
import pickle

import numpy as np
import pytest

from distopt import STATUS_FAIL, AllTrialsFailed, STATUS_OK, DistoptError, Trials, fmin, hp, rand, space_eval
from distopt.early_stop import no_progress_loss
from distopt.fmin import InvalidAnnotatedParameter

POLY = np.poly1d([1, -2, -28, 28, 12, -26, 100])


def run(fn, space, n, **kw):
    kw.setdefault("algo", rand.suggest)
    kw.setdefault("show_progressbar", False)
    kw.setdefault("rstate", np.random.default_rng(0))
    return fmin(fn, space, max_evals=n, **kw)


def test_random_search_finds_the_polynomial_minimum():
    best = run(lambda x: POLY(x), hp.uniform("x", -5, 6), 2000)
    assert abs(best["x"] - 4.878) < 0.05


def test_seed_style_trials_and_dataframe():
    pd = pytest.importorskip("pandas")
    trials = Trials()
    run(lambda x: POLY(x), hp.uniform("x", -5, 6), 50, trials=trials)
    frame = pd.DataFrame({"loss": [r["loss"] for r in trials.results],
                          "iteration": trials.idxs_vals[0]["x"], "x": trials.idxs_vals[1]["x"]})
    assert len(frame) == 50 and frame["iteration"].tolist() == list(range(50))
    assert frame["loss"].min() == pytest.approx(trials.best_trial["result"]["loss"])


def test_dict_results_keep_extra_keys_and_failures_are_recorded():
    def fn(x):
        if x < 0:
            return {"status": STATUS_FAIL, "why": "negative"}
        return {"loss": x, "status": STATUS_OK, "note": f"x={x:.2f}", "arr": np.arange(2)}

    trials = Trials()
    best = run(fn, hp.uniform("x", -1, 1), 30, trials=trials)
    statuses = trials.statuses()
    assert set(statuses) == {"ok", "fail"}
    ok = [r for r in trials.results if r["status"] == "ok"]
    assert all(list(r["arr"]) == [0, 1] and r["note"].startswith("x=") for r in ok)  # arrays stay arrays
    assert best["x"] == min(r["loss"] for r in ok)
    assert [l for l in trials.losses() if l is not None] == [r["loss"] for r in ok]


@pytest.mark.parametrize("bad, reason", [(float("nan"), "non-finite loss"), (float("inf"), "non-finite loss"),
                                         ("abc", "loss 'abc' of type str")])
def test_bad_losses_fail_the_trial_with_a_message(bad, reason):
    trials = Trials()  # an invalid return ('abc') raises unless caught, as in hyperopt
    run(lambda x: bad if x < 0.5 else x, hp.uniform("x", 0, 1), 20, trials=trials, catch_eval_exceptions=True)
    failed = [t for t in trials.study.trials if t.state.value == "fail"]
    assert failed and all(reason in t.error for t in failed)


def test_exception_propagates_by_default_and_is_caught_on_request():
    def boom(x):
        raise RuntimeError("kaput")

    trials = Trials()
    with pytest.raises(RuntimeError, match="kaput"):
        run(boom, hp.uniform("x", 0, 1), 3, trials=trials)
    assert trials.statuses() == [] and len(trials.study.trials) == 1  # ERROR: hidden, as in hyperopt
    trials = Trials()
    with pytest.raises(DistoptError, match="no evaluation tasks"):
        run(boom, hp.uniform("x", 0, 1), 3, trials=trials, catch_eval_exceptions=True)
    assert len(trials) == 0 and len(trials.study.trials) == 3
    assert all("RuntimeError: kaput" in t.error for t in trials.study.trials)


def test_loss_threshold_and_timeout_and_early_stop():
    trials = Trials()
    run(lambda x: x, hp.uniform("x", 0, 1), 1000, trials=trials, loss_threshold=0.1)
    assert trials.best_trial["result"]["loss"] < 0.1 and len(trials) < 1000
    trials = Trials()
    run(lambda x: 1.0, hp.uniform("x", 0, 1), 1000, trials=trials, early_stop_fn=no_progress_loss(5))
    assert len(trials) == 5  # as hyperopt's no_progress_loss(5) gives
    trials = Trials()
    import time
    run(lambda x: time.sleep(0.05) or x, hp.uniform("x", 0, 1), 1000, trials=trials, timeout=0.3)
    assert 1 <= len(trials) <= 10  # the upper bound is what the timeout promises; how many fit is the machine's


def test_trials_are_reused_to_continue_a_search():
    trials = Trials()
    run(lambda x: x, hp.uniform("x", 0, 1), 10, trials=trials)
    run(lambda x: x, hp.uniform("x", 0, 1), 25, trials=trials)
    assert len(trials) == 25 and trials.tids == list(range(25))


def test_pickled_trials_resume():
    trials = Trials()
    run(lambda x: x ** 2, hp.uniform("x", -1, 1), 10, trials=trials)
    loaded = pickle.loads(pickle.dumps(trials))
    assert loaded.argmin == trials.argmin and len(loaded) == 10
    run(lambda x: x ** 2, hp.uniform("x", -1, 1), 15, trials=loaded)
    assert len(loaded) == 15 and loaded.tids == list(range(15))


def test_trials_save_file(tmp_path):
    path = tmp_path / "trials.pkl"
    run(lambda x: x, hp.uniform("x", 0, 1), 5, trials_save_file=str(path))
    run(lambda x: x, hp.uniform("x", 0, 1), 8, trials_save_file=str(path))
    assert len(pickle.loads(path.read_bytes())) == 8


def test_points_to_evaluate_and_return_argmin_false():
    space = {"c": hp.choice("c", ["a", "b"]), "x": hp.uniform("x", 0, 1)}
    seen = []
    best = run(lambda p: seen.append(p) or p["x"], space, 3,
               points_to_evaluate=[{"c": 1, "x": 0.0}], return_argmin=False)
    assert seen[0] == {"c": "b", "x": 0.0}
    assert best == {"c": "b", "x": 0.0}


def test_annotated_space():
    def fn(x: hp.uniform("x", -1, 1), y: hp.choice("y", [1, 2])):
        return x ** 2 + y

    best = run(fn, "annotated", 50)
    assert set(best) == {"x", "y"} and best["y"] == 0

    def bad(x: int):
        return x

    with pytest.raises(InvalidAnnotatedParameter, match="argument 'x' is annotated with <class 'int'>"):
        run(bad, "annotated", 1)


def test_partial_algo_and_rstate_determinism():
    algo = functools.partial(rand.suggest)
    a = run(lambda x: x, hp.uniform("x", 0, 1), 10, algo=algo, rstate=np.random.default_rng(7))
    b = run(lambda x: x, hp.uniform("x", 0, 1), 10, algo=algo, rstate=np.random.default_rng(7))
    assert a == b


@pytest.mark.parametrize("bad", [-3, 2.5, "10", True, float("nan")])
def test_bad_max_evals(bad):
    with pytest.raises(DistoptError, match=f"max_evals must be a non-negative whole number .*got {bad!r}"):
        run(lambda x: x, hp.uniform("x", 0, 1), bad)


@pytest.mark.parametrize("given, ran", [(5.0, 5), (1e1, 10), (np.int64(4), 4)])
def test_max_evals_takes_any_whole_number_as_hyperopt_does(given, ran):
    trials = Trials()
    fmin(lambda x: x, hp.uniform("x", 0, 1), algo=rand.suggest, max_evals=given, trials=trials,
         rstate=np.random.default_rng(0), show_progressbar=False)
    assert len(trials) == ran


def test_infinite_max_evals_runs_until_another_rule_stops_it():
    trials = Trials()
    fmin(lambda x: x, hp.uniform("x", 0, 1), algo=rand.suggest, max_evals=float("inf"), trials=trials,
         loss_threshold=0.05, rstate=np.random.default_rng(0), show_progressbar=False)
    assert min(trials.losses()) <= 0.05


def test_return_argmin_false_when_every_trial_failed_raises_as_hyperopt_does():
    def fail(x):
        return {"status": STATUS_FAIL}

    with pytest.raises(AllTrialsFailed):
        fmin(fail, hp.uniform("x", 0, 1), algo=rand.suggest, max_evals=3, return_argmin=False,
             rstate=np.random.default_rng(0), show_progressbar=False)


def test_trials_save_file_does_not_replace_the_trials_given(tmp_path):
    path = str(tmp_path / "saved.p")
    space = hp.uniform("x", 0, 1)
    fmin(lambda x: x, space, algo=rand.suggest, max_evals=4, trials_save_file=path,
         rstate=np.random.default_rng(0), show_progressbar=False)
    mine = Trials()
    fmin(lambda x: x, space, algo=rand.suggest, max_evals=3, trials=mine, trials_save_file=path,
         rstate=np.random.default_rng(1), show_progressbar=False)
    assert len(mine) == 3  # hyperopt loads the file only when no trials object is given


def test_space_eval_of_argmin_round_trip():
    space = {"m": hp.choice("m", [{"a": hp.uniform("a", 0, 1)}, {"b": hp.randint("b", 4)}])}
    best = run(lambda p: p["m"].get("a", p["m"].get("b", 0) / 4), space, 40)
    assert space_eval(space, best)["m"] in ({"a": best.get("a")}, {"b": best.get("b")})


def test_progress_bar_in_a_log_file_redraws_rarely(monkeypatch):
    """stderr a file: the bar is drawn at its minimum interval, not once per trial."""
    import io

    from distopt import fmin, hp

    log = io.StringIO()
    monkeypatch.setattr("sys.stderr", log)
    fmin(lambda x: x ** 2, hp.uniform("x", -1, 1), max_evals=300, show_progressbar=True, rstate=0)
    text = log.getvalue()
    draws = text.count("\r") + text.count("\n")
    assert "300/300" in text and draws <= 10, (draws, len(text))


def test_fmin_forwards_every_parameter_to_minimize(monkeypatch):
    # fmin keeps hyperopt's explicit signature and minimize repeats it: a parameter added
    # to one and not the other, or not forwarded, would silently take its default
    import inspect

    from distopt.compat import fmin as fmin_module
    from distopt.compat.minimize import minimize

    ours = {n: (p.kind, p.default) for n, p in inspect.signature(fmin_module.fmin).parameters.items()}
    theirs = {n: (p.kind, p.default) for n, p in inspect.signature(minimize).parameters.items()}
    assert ours.pop("trials")[1] is None and theirs.pop("trials")[0] is inspect.Parameter.POSITIONAL_OR_KEYWORD
    assert ours == theirs

    seen = {}
    monkeypatch.setattr(fmin_module, "minimize", lambda fn, space, trials, **kw: seen.update(kw, trials=trials))
    sentinels = {name: object() for name in ours if name not in ("fn", "space")}
    fmin_module.fmin("fn", "space", trials="the trials", **sentinels)
    assert seen == {**sentinels, "trials": "the trials"}
