"""Parity with the installed hyperopt: code written for it runs by changing the import."""

import datetime
import math

import numpy as np
import pytest

hyperopt = pytest.importorskip("hyperopt", reason="hyperopt is a test extra: pip install -e '.[test]'")
from hyperopt import hp as hhp  # noqa: E402
from hyperopt.pyll import scope as hscope  # noqa: E402

import distopt  # noqa: E402
from distopt import hp  # noqa: E402
from distopt.pyll import scope  # noqa: E402


def build(h, sc):
    return {
        "lr": h.loguniform("lr", -7, 0),
        "n": sc.int(h.quniform("n", 1, 9, 1)),
        "ui": h.uniformint("ui", 1, 9),
        "r1": h.randint("r1", 5),
        "r2": h.randint("r2", 3, 8),
        "q": h.qloguniform("q", 0, 4, 2),
        "shift": 1 + h.lognormal("shift", 0, 1),
        "scaled": 2 * h.normal("scaled", 0, 1),
        "model": h.choice("model", [
            {"kind": "svm", "C": h.lognormal("C", 0, 1), "k": h.pchoice("k", [(0.2, "rbf"), (0.8, "lin")])},
            ("tree", h.qnormal("depth", 5, 2, 1)),
            None,
        ]),
        "tup": (h.uniform("a", -1, 1), [h.qlognormal("b", 0, 1, 0.5)]),
    }


ASSIGNMENTS = [
    {"lr": 0.01, "n": 3.0, "ui": 4.0, "r1": 2, "r2": 6, "q": 8.0, "shift": 1.5, "scaled": -0.3, "model": 0,
     "C": 2.5, "k": 1, "a": 0.1, "b": 1.5},
    {"lr": 0.5, "n": 9.0, "ui": 1.0, "r1": 0, "r2": 3, "q": 2.0, "shift": 0.2, "scaled": 1.7, "model": 1,
     "depth": 7.0, "a": -0.9, "b": 0.0},
    {"lr": 0.001, "n": 1.0, "ui": 9.0, "r1": 4, "r2": 7, "q": 0.0, "shift": 3.0, "scaled": 0.0, "model": 2,
     "a": 0.0, "b": 2.5},
]


@pytest.mark.parametrize("vals", ASSIGNMENTS)
def test_space_eval_agrees_with_hyperopt(vals):
    ours = distopt.space_eval(build(hp, scope), vals)
    theirs = hyperopt.space_eval(build(hhp, hscope), vals)
    assert ours == theirs
    assert type(ours["n"]) is type(theirs["n"]) is int
    assert type(ours["ui"]) is type(theirs["ui"]) is int
    assert type(ours["lr"]) is type(theirs["lr"]) is float
    assert type(ours["tup"]) is type(theirs["tup"]) is tuple


def _run(mod, space, fn, n, algo):
    trials = mod.Trials()
    best = mod.fmin(fn, space, algo=algo, max_evals=n, trials=trials, show_progressbar=False,
                    rstate=np.random.default_rng(0))
    return best, trials


def test_trial_documents_have_hyperopt_keys_and_types():
    def fn(p):
        return {"loss": p["x"] ** 2, "status": "ok", "extra": [1, 2]}

    space_h = {"x": hhp.uniform("x", -1, 1), "c": hhp.choice("c", [{"z": hhp.uniform("z", 0, 1)}, 2])}
    space_d = {"x": hp.uniform("x", -1, 1), "c": hp.choice("c", [{"z": hp.uniform("z", 0, 1)}, 2])}
    _, th = _run(hyperopt, space_h, fn, 5, hyperopt.rand.suggest)
    _, td = _run(distopt, space_d, fn, 5, distopt.rand.suggest)
    dh, dd = th.trials[0], td.trials[0]
    assert set(dd) == set(dh)
    assert set(dd["misc"]) == set(dh["misc"])
    for key in ("state", "tid", "version"):
        assert type(dd[key]) is type(dh[key])
    assert isinstance(dd["book_time"], datetime.datetime) and isinstance(dd["refresh_time"], datetime.datetime)
    assert dd["state"] == dh["state"] == hyperopt.JOB_STATE_DONE
    assert set(dd["misc"]["vals"]) == set(dh["misc"]["vals"]) == {"x", "c", "z"}
    assert dd["result"]["extra"] == [1, 2] and dd["result"]["status"] == "ok"
    for doc in td.trials:  # inactive parameters have empty lists, as in hyperopt
        active_z = doc["misc"]["vals"]["c"][0] == 0
        assert bool(doc["misc"]["vals"]["z"]) == active_z
        assert doc["misc"]["idxs"]["x"] == [doc["tid"]]
    assert set(td.idxs_vals[1]) == set(th.idxs_vals[1])
    assert len(td.losses()) == len(td.statuses()) == len(td.results) == len(td) == 5


def test_fmin_returns_choice_index_like_hyperopt():
    def fn(p):
        return {"a": 3.0, "b": 1.0, "c": 2.0}[p["opt"]]

    bh, _ = _run(hyperopt, {"opt": hhp.choice("opt", ["a", "b", "c"])}, fn, 20, hyperopt.rand.suggest)
    bd, _ = _run(distopt, {"opt": hp.choice("opt", ["a", "b", "c"])}, fn, 20, distopt.rand.suggest)
    assert bh == bd == {"opt": 1}
    assert distopt.space_eval({"opt": hp.choice("opt", ["a", "b", "c"])}, bd) == {"opt": "b"}


def test_constants_match_hyperopt():
    for name in ("STATUS_OK", "STATUS_FAIL", "STATUS_NEW", "STATUS_RUNNING", "JOB_STATE_NEW", "JOB_STATE_RUNNING",
                 "JOB_STATE_DONE", "JOB_STATE_ERROR", "JOB_STATE_CANCEL"):
        assert getattr(distopt, name) == getattr(hyperopt.base, name), name
    assert distopt.JOB_STATES == hyperopt.JOB_STATES


def test_timeout_and_loss_threshold_messages_match_hyperopt():
    for kwargs in ({"timeout": -1}, {"timeout": "x"}, {"loss_threshold": "x"}):
        with pytest.raises(Exception) as theirs:
            hyperopt.fmin(lambda x: x, hhp.uniform("x", 0, 1), algo=hyperopt.rand.suggest, max_evals=1,
                          show_progressbar=False, **kwargs)
        with pytest.raises(distopt.DistoptError) as ours:
            distopt.fmin(lambda x: x, hp.uniform("x", 0, 1), algo=distopt.rand.suggest, max_evals=1,
                         show_progressbar=False, **kwargs)
        assert str(ours.value) == str(theirs.value)


def test_generate_trials_to_calculate_evaluates_points_first():
    from distopt import generate_trials_to_calculate

    trials = generate_trials_to_calculate([{"x": 0.25}, {"x": -0.5}])
    seen = []
    distopt.fmin(lambda x: seen.append(x) or x ** 2, hp.uniform("x", -1, 1), algo=distopt.rand.suggest,
                 max_evals=4, trials=trials, show_progressbar=False)
    assert seen[:2] == [0.25, -0.5]
    assert len(trials) == 4
    assert math.isclose(trials.losses()[0], 0.0625)
