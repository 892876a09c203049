"""Plots write PNGs matplotlib can read back, for in-memory and stored studies."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from distopt import STATUS_FAIL, Study, Trials, fmin, hp
from distopt.errors import MissingExtra
from distopt.monitor.plots import PLOTS, PlotError
from distopt.study.snapshot import read_study
from distopt.storage import RedisStorage

pytest.importorskip("matplotlib")
from matplotlib.image import imread  # noqa: E402

SPACE = {
    "lr": hp.loguniform("lr", -9, 0),
    "units": hp.quniform("units", 8, 64, 8),
    "depth": hp.randint("depth", 1, 6),
    "opt": hp.choice("opt", ["adam", "sgd", {"momentum": hp.uniform("momentum", 0, 1)}]),
}


def objective(p):
    if p["depth"] == 5:
        return {"status": STATUS_FAIL}
    return float(np.log(p["lr"]) ** 2 + p["units"] / 64 + p["depth"])


@pytest.fixture(scope="module")
def trials():
    trials = Trials()
    fmin(objective, SPACE, max_evals=30, trials=trials, rstate=np.random.default_rng(0), show_progressbar=False)
    return trials


def assert_png(path):
    assert path.stat().st_size > 5000
    image = imread(path)
    assert image.ndim == 3 and image.shape[0] > 200 and image.shape[1] > 400


KINDS = sorted(k for k in PLOTS if k != "curves")  # curves need reported values: below


@pytest.mark.parametrize("kind", KINDS)
def test_plots_of_trials_and_study(tmp_path, trials, kind):
    PLOTS[kind](trials, tmp_path / "t.png")
    assert_png(tmp_path / "t.png")
    fig = PLOTS[kind](trials.study)
    assert fig.axes


@pytest.mark.parametrize("kind", KINDS)
def test_plots_of_a_stored_study(tmp_path, fake_redis, kind):
    study = Study(SPACE, seed=3, storage=RedisStorage(fake_redis), name="stored")
    for t in study.ask(12):
        study.tell(t, objective(t.params))
    PLOTS[kind](read_study(fake_redis, "stored"), tmp_path / "s.png")
    assert_png(tmp_path / "s.png")


@pytest.mark.parametrize("kind", sorted(PLOTS))
def test_nothing_to_plot(kind):
    with pytest.raises(PlotError, match="nothing to plot"):
        PLOTS[kind](Trials())


def test_history_needs_a_finished_trial():
    study = Study(SPACE, name="pending")
    study.ask(2)
    with pytest.raises(PlotError, match="pending"):
        PLOTS["history"](study)


def test_missing_matplotlib_names_the_extra(monkeypatch, trials):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(MissingExtra, match=r"pip install 'distopt\[plot\]'"):
        PLOTS["history"](trials)


def test_curves_of_a_pruned_search_and_of_a_stored_study(tmp_path, fake_redis):
    from distopt import report

    def learning(p):
        for step in range(10):
            report(step, p["x"] ** 2 + 1.0 / (step + 1))
        return p["x"] ** 2

    trials = Trials()
    fmin(learning, {"x": hp.uniform("x", -3, 3)}, max_evals=20, trials=trials, pruner="median",
         rstate=np.random.default_rng(1), show_progressbar=False)
    assert any(r.state.value == "pruned" for r in trials.study.trials)
    fig = PLOTS["curves"](trials, tmp_path / "c.png")
    assert_png(tmp_path / "c.png")
    from distopt.monitor.plots import trial_counts
    from distopt.study.snapshot import as_snapshot

    assert " pruned" in trial_counts(as_snapshot(trials))
    assert trial_counts(as_snapshot(trials)) in fig.axes[0].get_title()
    study = Study(SPACE, seed=3, storage=RedisStorage(fake_redis), name="stored")
    for t in study.ask(3):
        for step in range(4):
            study.storage.report("stored", t.tid, 0, step, 1.0 / (step + 1 + t.tid))
    PLOTS["curves"](read_study(fake_redis, "stored"), tmp_path / "s.png")
    assert_png(tmp_path / "s.png")
    with pytest.raises(PlotError, match="no intermediate values"):
        PLOTS["curves"](Study(SPACE, seed=3))
def test_every_plot_counts_the_same_trials(fake_redis):
    """A study with failed and pending trials: history, params and histogram titles agree."""
    study = Study(SPACE, seed=5, storage=RedisStorage(fake_redis), name="counted")
    for t in study.ask(10):
        study.tell(t, objective(t.params))
    study.ask(3)  # still pending
    snap = read_study(fake_redis, "counted")
    ok = sum(1 for r in snap.records if r.state.value == "ok")
    fail = sum(1 for r in snap.records if r.state.value == "fail")
    expected = f"13 trials: {ok} ok, {fail} failed, 3 other"
    titles = []
    for kind in KINDS:  # the curves plot uses the same count: see test_curves_of_a_pruned_search_...
        fig = PLOTS[kind](snap)
        titles.append(fig._suptitle.get_text() if fig._suptitle else fig.axes[0].get_title())
    assert all(expected in t for t in titles), titles
