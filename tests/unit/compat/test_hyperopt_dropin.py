"""hyperopt code that goes beyond the tutorial: its module paths, anneal and mix,
hyperopt-signature algorithms, trial documents and warm starts, pyll scope functions."""

import functools
import logging

import numpy as np
import pytest

import distopt
from distopt import STATUS_OK, Study, Trials, fmin, hp
from distopt import anneal, mix, rand, tpe
from distopt.base import (JOB_STATE_DONE, Domain, miscs_to_idxs_vals, miscs_update_idxs_vals, trials_from_docs)
from distopt.errors import AlgoError, DistoptError
from distopt import exceptions
from distopt.pyll import as_apply, scope


def run(fn, space, n, **kw):
    kw.setdefault("show_progressbar", False)
    kw.setdefault("rstate", np.random.default_rng(0))
    return fmin(fn, space, max_evals=n, **kw)


def test_every_hyperopt_exception_is_a_distopt_error():
    names = ["BadSearchSpace", "DuplicateLabel", "InvalidTrial", "InvalidResultStatus", "InvalidLoss",
             "AllTrialsFailed", "InvalidAnnotatedParameter"]
    for name in names:
        assert issubclass(getattr(exceptions, name), DistoptError), name
    assert issubclass(exceptions.DuplicateLabel, exceptions.BadSearchSpace)


def test_duplicate_labels_are_rejected_but_a_shared_node_is_one_parameter():
    with pytest.raises(exceptions.DuplicateLabel, match="'x'"):
        run(lambda v: 0.0, [hp.uniform("x", -5, 5), hp.uniform("x", -5, 5)], 2)
    x = hp.uniform("x", -5, 5)
    best = run(lambda v: (v[0] - 1) ** 2, (x, hp.choice("c", [x, x + 1])), 20, algo=rand.suggest)
    assert set(best) == {"x", "c"}


def test_choice_nodes_index_and_scope_functions_evaluate():
    o = hp.choice("o", [(-3, 1.0), (3, 2.0)])
    assert distopt.space_eval(o[0] * o[1], {"o": 1}) == 6.0
    arms = as_apply([-1.0, 0.0])[hp.choice("arm", [0, 1])]
    assert distopt.space_eval(arms, {"arm": 0}) == -1.0
    u = hp.uniform("u", 0, 1)
    assert distopt.space_eval(scope.sin(u) + scope.cos(u), {"u": 0.0}) == 1.0
    assert distopt.space_eval(scope.switch(hp.randint("i", 2), "a", "b"), {"i": 1}) == "b"
    noisy = scope.normal(0.0, 1.0, rng=np.random.default_rng(3))
    assert isinstance(distopt.space_eval(noisy, {}), float)
    with pytest.raises(TypeError, match="not iterable"):
        list(o)


@pytest.mark.parametrize("algo", [anneal.suggest, functools.partial(anneal.suggest, avg_best_idx=3.0, shrink_coef=0.2),
                                  functools.partial(mix.suggest, p_suggest=[(0.3, rand.suggest), (0.7, anneal.suggest)])])
def test_anneal_and_mix_handle_every_kind_and_conditions_deterministically(algo):
    space = {"a": hp.choice("a", [{"x": hp.uniform("x", -5, 5)},
                                  {"y": hp.lognormal("y", 0, 1), "z": hp.randint("z", 3, 9)}]),
             "q": hp.qloguniform("q", 0, 3, 1), "n": hp.qnormal("n", 0, 3, 0.5),
             "p": hp.pchoice("p", [(0.2, "s"), (0.8, "t")])}

    def f(p):
        a = p["a"]
        base = (a["x"] - 1) ** 2 if "x" in a else abs(np.log(a["y"])) + a["z"]
        return base + 0.01 * (p["q"] + abs(p["n"]))

    t1, t2 = Trials(), Trials()
    best = run(f, space, 60, algo=algo, trials=t1)
    assert best == run(f, space, 60, algo=algo, trials=t2)
    for doc in t1.trials:
        vals = doc["misc"]["vals"]
        assert bool(vals["x"]) == (vals["a"] == [0]) and bool(vals["y"]) == (vals["a"] == [1])
        assert not vals["z"] or 3 <= vals["z"][0] < 9
    assert min(t1.losses()) < 0.5


def test_anneal_narrows_around_the_best_and_runs_in_a_study():
    study = Study(hp.uniform("x", -10, 10), algo=anneal.suggest, seed=1)
    for _ in range(60):
        trial = study.ask()
        study.tell(trial, (trial.params - 2.0) ** 2)
    late = [r.vals["x"] for r in study.trials[-15:]]
    assert abs(study.best_params - 2.0) < 0.2 and np.std(late) < 2.0


def test_anneal_rejects_bad_settings():
    with pytest.raises(AlgoError, match="avg_best_idx"):
        run(lambda x: x, hp.uniform("x", 0, 1), 2, algo=functools.partial(anneal.suggest, avg_best_idx=0.5))


def test_hyperopt_signature_algo_runs_in_fmin_and_sees_documents():
    calls = []

    def my_algo(new_ids, domain, trials, seed):
        calls.append((list(new_ids), len(trials.trials), sorted(domain.params)))
        assert domain.expr is space
        return tpe.suggest(new_ids, domain, trials, seed, n_startup_jobs=3)

    space = {"x": hp.uniform("x", -5, 5), "c": hp.choice("c", [0, 1])}
    trials = Trials()
    best = run(lambda p: (p["x"] - 1) ** 2 + p["c"], space, 25, algo=my_algo, trials=trials)
    assert len(trials) == 25 and len(calls) == 25
    assert calls[0][2] == ["c", "x"] and calls[5][1] == 5
    assert abs(best["x"] - 1) < 1.5


def test_builtin_suggest_called_hyperopt_style_returns_new_documents():
    domain = Domain(lambda p: p, {"x": hp.uniform("x", 0, 1), "c": hp.choice("c", ["a", "b"])})
    docs = rand.suggest([7, 8, 9], domain, Trials(), 45)
    assert [d["tid"] for d in docs] == [7, 8, 9]
    idxs, vals = miscs_to_idxs_vals([d["misc"] for d in docs])
    assert idxs["x"] == [7, 8, 9] and all(0 <= v <= 1 for v in vals["x"])
    assert docs == rand.suggest([7, 8, 9], domain, Trials(), 45)
    assert Domain(lambda p: p, hp.uniform("x", 0, 1)).evaluate({"x": 0.5}) == {"loss": 0.5, "status": STATUS_OK}


def test_warm_start_from_documents():
    trials = Trials()
    tids = trials.new_trial_ids(2)
    miscs = [{"tid": t, "cmd": None, "workdir": None, "idxs": {}, "vals": {}} for t in tids]
    miscs_update_idxs_vals(miscs, {"x": tids}, {"x": [2.9, -4.0]})
    docs = trials.new_trial_docs(tids, [None, None], [{"status": STATUS_OK, "loss": 0.01}, {"status": STATUS_OK, "loss": 49.0}], miscs)
    for doc in docs:
        doc["state"] = JOB_STATE_DONE
    trials.insert_trial_docs(docs)
    assert len(trials) == 0
    trials.refresh()
    assert len(trials) == 2 and trials.best_trial["tid"] == tids[0]
    best = run(lambda x: (x - 3) ** 2, hp.uniform("x", -5, 5), 5, algo=anneal.suggest, trials=trials)
    assert len(trials) == 5 and abs(best["x"] - 3) <= 0.1 + 1e-9
    copy = trials_from_docs(trials.trials)
    assert len(copy) == 5
    copy.delete_all()
    assert len(copy) == 0


def test_results_need_a_status_as_in_hyperopt():
    with pytest.raises(exceptions.InvalidResultStatus, match="without a 'status'"):
        run(lambda x: {"loss": x}, hp.uniform("x", 0, 1), 1)


def test_points_to_evaluate_with_trials_are_ignored_with_a_warning(caplog):
    seen = []
    with caplog.at_level(logging.WARNING, logger="distopt.fmin"):
        run(lambda x: seen.append(x) or x, hp.uniform("x", 0, 1), 2, trials=Trials(), points_to_evaluate=[{"x": 0.5}])
    assert 0.5 not in seen and "points_to_evaluate is ignored" in caplog.text


def test_trials_fmin_method_and_tpe_defaults():
    trials = Trials()
    trials.fmin(lambda x: x ** 2, hp.uniform("x", -1, 1), algo=tpe.suggest, max_evals=5, show_progressbar=False)
    assert len(trials) == 5
    assert tpe._default_gamma == tpe.DEFAULTS["gamma"] and tpe._default_n_startup_jobs == tpe.DEFAULTS["n_startup_jobs"]


def test_atpe_is_not_provided_and_says_so():
    from distopt import atpe

    with pytest.raises(AlgoError, match="lightgbm"):
        run(lambda x: x, hp.uniform("x", 0, 1), 2, algo=atpe.suggest)


def test_fmin_takes_a_hyperopt_progress_callback():
    import contextlib

    seen = []

    @contextlib.contextmanager
    def callback(initial, total):
        class Ctx:
            postfix = ""

            def update(self, n):
                seen.append((n, self.postfix))

        seen.append(("open", initial, total))
        yield Ctx()
        seen.append(("closed",))

    run(lambda x: x ** 2, hp.uniform("x", -1, 1), 4, algo=rand.suggest, show_progressbar=callback)
    assert seen[0] == ("open", 0, 4) and seen[-1] == ("closed",)
    assert sum(n for n, *_ in seen[1:-1]) == 4 and seen[-2][1].startswith("best loss: ")
    from distopt.progress import no_progress_callback

    run(lambda x: x ** 2, hp.uniform("x", -1, 1), 2, algo=rand.suggest, show_progressbar=no_progress_callback)


def test_anneal_is_a_named_algo_for_distopt_run():
    from distopt.cli.study_file import algo_by_name

    assert algo_by_name("anneal") is distopt.algo.anneal.suggest


def test_inserted_documents_survive_pickling():
    import pickle

    trials = Trials()
    tid = trials.new_trial_ids(1)[0]
    misc = {"tid": tid, "cmd": None, "workdir": None, "idxs": {"x": [tid]}, "vals": {"x": [0.25]}}
    (doc,) = trials.new_trial_docs([tid], [None], [{"status": STATUS_OK, "loss": 1.0}], [misc])
    doc["state"] = JOB_STATE_DONE
    trials.insert_trial_doc(doc)
    trials.refresh()
    trials.insert_trial_doc(dict(doc, tid=tid + 1, misc=dict(misc, tid=tid + 1)))
    copy = pickle.loads(pickle.dumps(trials))
    assert len(copy) == 1
    copy.refresh()
    assert len(copy) == 2 and copy.best_trial["result"]["loss"] == 1.0
