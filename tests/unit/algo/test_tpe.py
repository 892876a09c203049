"""The TPE sampler: validity of suggestions, pending handling, settings, determinism."""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest

from distopt.algo import History, rand, tpe
from distopt.errors import AlgoError
from distopt.space import compile_space, hp

MIXED = {
    "x": hp.uniform("x", -5, 6),
    "lr": hp.loguniform("lr", math.log(1e-4), math.log(1.0)),
    "units": hp.quniform("units", 16, 256, 16),
    "qlr": hp.qloguniform("qlr", math.log(1), math.log(100), 5),
    "depth": hp.randint("depth", 2, 9),
    "act": hp.choice("act", ["relu", "tanh", "elu"]),
}

CONDITIONAL = hp.choice(
    "model",
    [
        {"kind": "svm", "C": hp.loguniform("C", -3, 3), "kernel": hp.choice("kernel", ["rbf", {"deg": hp.randint("deg", 2, 5)}])},
        {"kind": "tree", "depth": hp.quniform("depth", 1, 10, 1)},
    ],
)


def empty(space) -> np.ndarray:
    return np.empty((0, len(space)))


def run(space, objective, n_trials, seed, algo=tpe.suggest, **settings):
    """Sequential loop: ask one, tell it; the history at the end."""
    space = compile_space(space)
    history = History(space)
    rng = np.random.default_rng(seed)
    for _ in range(n_trials):
        vals = algo(space, history, empty(space), 1, rng, **settings)[0]
        history.add(vals, objective(vals))
    return history


def mixed_loss(v) -> float:
    return (v["x"] - 1) ** 2 + abs(math.log(v["lr"]) + 5) + abs(v["units"] - 64) / 64 + v["depth"] % 3 + v["act"]


def check_mixed(vals):
    assert set(vals) == set(MIXED)
    assert -5 <= vals["x"] <= 6 and isinstance(vals["x"], float)
    assert 1e-4 <= vals["lr"] <= 1.0
    assert vals["units"] % 16 == 0 and 16 <= vals["units"] <= 256
    assert vals["qlr"] % 5 == 0 and 0 <= vals["qlr"] <= 100
    assert isinstance(vals["depth"], int) and 2 <= vals["depth"] < 9
    assert isinstance(vals["act"], int) and vals["act"] in (0, 1, 2)


@pytest.mark.parametrize("multivariate", [True, False])
def test_suggestions_in_bounds_quantized_and_typed(multivariate):
    history = run(MIXED, mixed_loss, 40, seed=1, n_startup_jobs=5, multivariate=multivariate)
    space = compile_space(MIXED)
    for vals in tpe.suggest(space, history, history.X[-6:], 30, np.random.default_rng(2), multivariate=multivariate):
        check_mixed(vals)


def conditional_loss(v) -> float:
    if v["model"] == 0:
        return abs(math.log(v["C"]) - 1) + (0.5 if v["kernel"] == 0 else 0.1 * v["deg"])
    return abs(v["depth"] - 4) / 3 + 0.2


@pytest.mark.parametrize("multivariate", [True, False])
def test_conditional_parameters_active_iff_their_branch(multivariate):
    space = compile_space(CONDITIONAL)
    history = run(CONDITIONAL, conditional_loss, 40, seed=3, n_startup_jobs=8, multivariate=multivariate)
    out = tpe.suggest(space, history, history.X[-4:], 40, np.random.default_rng(4), multivariate=multivariate)
    for vals in [history.decode(r) for r in history.X] + out:
        assert set(vals) == set(space.active_labels(vals))
        if vals["model"] == 0:
            assert set(vals) in ({"model", "C", "kernel"}, {"model", "C", "kernel", "deg"})
            assert ("deg" in vals) == (vals["kernel"] == 1)
        else:
            assert set(vals) == {"model", "depth"} and 1 <= vals["depth"] <= 10
    # both branches still explored after the model takes over
    seq = [tpe.suggest(space, history, empty(space), 1, np.random.default_rng(s), multivariate=multivariate)[0]
           for s in range(40)]
    assert {v["model"] for v in seq} == {0, 1}


def test_unbounded_normal_kinds():
    space = {
        "n": hp.normal("n", 2.0, 3.0),
        "qn": hp.qnormal("qn", 0.0, 5.0, 2.0),
        "ln": hp.lognormal("ln", 0.0, 1.0),
        "qln": hp.qlognormal("qln", 1.0, 1.0, 0.5),
    }

    def loss(v):
        return (v["n"] - 7) ** 2 + (v["qn"] + 4) ** 2 + (math.log(v["ln"]) - 0.5) ** 2 + abs(v["qln"] - 3)

    history = run(space, loss, 60, seed=5)
    out = tpe.suggest(compile_space(space), history, empty(compile_space(space)), 20, np.random.default_rng(0))
    for vals in [history.decode(r) for r in history.X] + out:
        assert all(math.isfinite(x) for x in vals.values())
        assert vals["qn"] % 2 == 0 and vals["ln"] > 0 and vals["qln"] >= 0 and vals["qln"] % 0.5 == 0
    best = history.losses.min()
    randoms = run(space, loss, 60, seed=5, algo=rand.suggest).losses.min()
    assert best < randoms


def nearest_neighbour_distance(points: list[dict]) -> float:
    X = np.array([[p["x"], p["y"]] for p in points])
    d = np.sqrt(((X[:, None] - X[None]) ** 2).sum(-1))
    np.fill_diagonal(d, np.inf)
    return float(d.min(axis=1).mean())


def test_liar_worst_spreads_a_batch_more_than_none():
    space = {"x": hp.uniform("x", -5, 5), "y": hp.uniform("y", -5, 5)}
    history = run(space, lambda v: v["x"] ** 2 + v["y"] ** 2, 40, seed=7, local_sequential=0.0)
    cs = compile_space(space)
    fixed = {"gamma_parallel": None, "n_EI_parallel": None}  # the liar alone
    worst, none = [], []
    for seed in range(8):
        batch = tpe.suggest(cs, history, history.X[-4:], 8, np.random.default_rng(seed), liar="worst", **fixed)
        worst.append(nearest_neighbour_distance(batch))
        batch = tpe.suggest(cs, history, history.X[-4:], 8, np.random.default_rng(seed), liar="none", **fixed)
        none.append(nearest_neighbour_distance(batch))
    assert np.mean(worst) > 1.5 * np.mean(none)


def test_penalty_spreads_a_batch_without_changing_the_densities():
    space = {"x": hp.uniform("x", -5, 5), "y": hp.uniform("y", -5, 5)}
    history = run(space, lambda v: v["x"] ** 2 + v["y"] ** 2, 40, seed=7)
    cs = compile_space(space)
    fixed = {"gamma_parallel": None, "n_EI_parallel": None, "liar": "none"}  # the penalty alone
    plain, pen = [], []
    for seed in range(8):
        batch = tpe.suggest(cs, history, history.X[-4:], 8, np.random.default_rng(seed), **fixed)
        plain.append(nearest_neighbour_distance(batch))
        batch = tpe.suggest(cs, history, history.X[-4:], 8, np.random.default_rng(seed), penalty=0.9, **fixed)
        pen.append(nearest_neighbour_distance(batch))
    assert np.mean(pen) > 1.5 * np.mean(plain)
    # nothing pending: the penalty has nothing to act on
    a = tpe.suggest(cs, history, empty(cs), 1, np.random.default_rng(0), liar="none")
    b = tpe.suggest(cs, history, empty(cs), 1, np.random.default_rng(0), liar="none", penalty=0.9)
    assert a == b


def test_penalty_on_categorical_and_conditional_spaces_stays_valid():
    space = compile_space(CONDITIONAL)
    history = run(CONDITIONAL, conditional_loss, 30, seed=3, n_startup_jobs=8)
    out = tpe.suggest(space, history, history.X[-6:], 20, np.random.default_rng(4), penalty=0.9)
    assert len(out) == 20 and all(v["model"] in (0, 1) for v in out)
    history = run(MIXED, mixed_loss, 30, seed=1, n_startup_jobs=5)
    for vals in tpe.suggest(compile_space(MIXED), history, history.X[-6:], 10, np.random.default_rng(2), penalty=0.9):
        check_mixed(vals)


def test_many_pending_start_the_model_earlier(monkeypatch):
    space = compile_space({"x": hp.uniform("x", 0, 1)})
    history = History(space)
    for x in np.linspace(0.05, 0.95, 6):
        history.add({"x": float(x)}, float(x))
    calls = []
    real = tpe.startup_point
    monkeypatch.setattr(tpe, "startup_point", lambda *a: calls.append(1) or real(*a))
    few, many = np.full((1, 1), 0.5), np.full((10, 1), 0.5)
    tpe.suggest(space, history, many, 1, np.random.default_rng(0), n_startup_jobs=10)
    assert calls  # the rule counts finished trials only
    calls.clear()
    tpe.suggest(space, history, few, 1, np.random.default_rng(0), n_startup_jobs=10, n_startup_parallel=5)
    assert calls  # one pending: nearly the full start-up
    calls.clear()
    tpe.suggest(space, history, many, 1, np.random.default_rng(0), n_startup_jobs=10, n_startup_parallel=5)
    assert not calls


def test_zero_liar_weight_is_no_lie():
    space = {"x": hp.uniform("x", -5, 5), "y": hp.uniform("y", -5, 5)}
    history = run(space, lambda v: v["x"] ** 2 + v["y"] ** 2, 30, seed=7)
    cs = compile_space(space)
    settings = {"gamma_parallel": None, "n_EI_parallel": None}
    with np.errstate(all="raise"):
        a = tpe.suggest(cs, history, history.X[-4:], 3, np.random.default_rng(0), liar_floor=0.0, liar_weight=0.0, **settings)
    b = tpe.suggest(cs, history, history.X[-4:], 3, np.random.default_rng(0), liar="none", **settings)
    assert a == b


def test_parallel_settings_follow_the_pending_count():
    cfg = tpe._settings({"gamma": 0.2, "gamma_parallel": 0.05, "n_EI_candidates": 10, "n_EI_parallel": 40,
                         "cat_parallel": 24})
    model = tpe.ModelConfig(**{f: cfg[f] for f in tpe.ModelConfig.__dataclass_fields__})
    assert tpe._for_pending(model, cfg, 0) == model
    one, many = tpe._for_pending(model, cfg, 1), tpe._for_pending(model, cfg, 99)
    assert model.gamma > one.gamma > many.gamma > 0.05
    assert many.gamma == pytest.approx(0.05, abs=0.002)
    assert model.n_EI_candidates < one.n_EI_candidates < many.n_EI_candidates == 40
    assert model.cat_candidates == 1 < one.cat_candidates < many.cat_candidates == 24  # cat_parallel


def test_a_wide_queue_commits_the_categorical_choice_a_sequential_search_draws():
    space = hp.choice("m", [{"x": hp.uniform("x", 0, 1)}, {"y": hp.uniform("y", 0, 1)}, {"z": hp.uniform("z", 0, 1)}])

    def loss(v):
        return {0: v.get("x", 0), 1: 0.5 + v.get("y", 0), 2: 0.7 + v.get("z", 0)}[v["m"]]

    history = run(space, loss, 40, seed=0, algo=rand.suggest)
    cs = compile_space(space)
    pending = history.X[-7:]
    firsts = [tpe.suggest(cs, history, empty(cs), 1, np.random.default_rng(s))[0]["m"] for s in range(60)]
    queued = [tpe.suggest(cs, history, pending, 1, np.random.default_rng(s), cat_parallel=24)[0]["m"] for s in range(60)]
    drawn = [tpe.suggest(cs, history, pending, 1, np.random.default_rng(s))[0]["m"] for s in range(60)]
    assert len(set(firsts)) > 1 and queued.count(0) > firsts.count(0)
    assert len(set(drawn)) > 1  # by default a wide queue draws the choice too


def test_categorical_only_group_draws_from_the_good_density():
    space = {"c": hp.choice("c", ["a", "b", "c", "d"])}
    history = run(space, lambda v: float(v["c"] != 0), 30, seed=0, algo=rand.suggest)
    cs = compile_space(space)
    greedy = [v["c"] for v in tpe.suggest(cs, history, empty(cs), 200, np.random.default_rng(1), liar="none", cat_candidates=24)]
    drawn = [v["c"] for v in tpe.suggest(cs, history, empty(cs), 200, np.random.default_rng(1), liar="none", cat_candidates=1)]
    assert greedy.count(0) == 200
    # the good value well above its prior share, the others not abandoned
    assert 70 < drawn.count(0) < 200 and set(drawn) == {0, 1, 2, 3}


def test_prior_liar_leaves_a_categorical_choice_to_the_finished_trials():
    # the choice at the top of a conditional space: pending trials on one branch say little
    # about which branch is better, so with liar_cat="prior" they leave the choice alone
    space = {"c": hp.choice("c", ["a", "b", "c"])}
    history = run(space, lambda v: float(v["c"] == 2), 30, seed=0, algo=rand.suggest)
    cs = compile_space(space)
    pending = np.zeros((20, 1))  # 20 trials running on "a", as good as "b"
    settings = {"cat_candidates": 24, "gamma_parallel": None, "n_EI_parallel": None, "local_sequential": 0.0}

    def firsts(pend, **more):
        return [tpe.suggest(cs, history, pend, 1, np.random.default_rng(s), **settings, **more)[0]["c"]
                for s in range(40)]

    quiet = firsts(empty(cs))
    assert firsts(pending, liar_cat="prior") == quiet
    lied = firsts(pending, liar_cat="kernel")
    assert 2 not in quiet and lied.count(0) < quiet.count(0)  # the lies on "a" push suggestions to "b"


def test_prior_lies_in_a_mixed_group_repel_by_the_numeric_values_alone():
    from distopt.algo.parzen import GroupModel, Mixture  # noqa: PLC0415

    specs = compile_space({"c": hp.choice("c", ["a", "b"]), "x": hp.uniform("x", 0, 1)}).params
    model = GroupModel(specs)
    lies = np.array([[0.0, 0.5]] * 3)  # pending on "a" near x = 0.5
    grid = np.linspace(0.05, 0.95, 7)
    cand = np.array([[c, x] for c in (0, 1) for x in grid])

    def by_category(cat_obs):
        mix = Mixture(model, lies, np.ones(3), 1.0, "neighbor", 1.0, prior=False, n_kernels=20, cat_obs=cat_obs)
        return mix.log_pdf(model.points(cand)).reshape(2, -1)

    prior, kernel = by_category(False), by_category(True)
    np.testing.assert_allclose(prior[0], prior[1])  # the same push on "a" and "b"
    assert (kernel[0] > kernel[1]).all()  # table lies push "a" harder
    assert prior[0, 3] > prior[0, 0]  # and still the most near x = 0.5


def test_kernels_without_categorical_observations_carry_the_prior_table():
    from distopt.algo.parzen import GroupModel, Mixture  # noqa: PLC0415

    spec = compile_space({"c": hp.pchoice("c", [(0.7, "a"), (0.2, "b"), (0.1, "c")])}).params
    obs = np.array([[0.0], [0.0], [2.0]])
    mix = Mixture(GroupModel(spec), obs, np.ones(3), 1.0, "neighbor", 1.0, prior=False, cat_obs=False)
    np.testing.assert_allclose(mix.tables[0], np.tile([0.7, 0.2, 0.1], (3, 1)))


def test_pending_points_repel_startup_design():
    space = compile_space({"x": hp.uniform("x", 0, 1)})
    history = History(space)
    pending = np.array([[0.02], [0.98]])
    pts = [tpe.suggest(space, history, pending, 1, np.random.default_rng(s))[0]["x"] for s in range(20)]
    assert np.mean([min(abs(p - 0.02), abs(p - 0.98)) for p in pts]) > 0.3
    batch = [v["x"] for v in tpe.suggest(space, history, empty(space), 8, np.random.default_rng(0))]
    assert np.diff(np.sort(batch)).min() > 0.02


def test_tpe_beats_random_on_a_simple_problem():
    space = {"x": hp.uniform("x", -5, 6), "y": hp.uniform("y", -3, 3)}

    def loss(v):
        return np.poly1d([1, -2, -28, 28, 12, -26, 100])(v["x"]) / 1000 + (v["y"] - 1) ** 2

    t = [run(space, loss, 60, seed=s).losses.min() for s in range(5)]
    r = [run(space, loss, 60, seed=s, algo=rand.suggest).losses.min() for s in range(5)]
    assert np.median(t) < np.median(r)


def test_same_seed_and_history_give_same_suggestions():
    a = run(MIXED, mixed_loss, 25, seed=11, n_startup_jobs=5)
    b = run(MIXED, mixed_loss, 25, seed=11, n_startup_jobs=5)
    np.testing.assert_array_equal(a.X, b.X)
    space = compile_space(MIXED)
    s1 = tpe.suggest(space, a, a.X[:3], 4, np.random.default_rng(9))
    s2 = tpe.suggest(space, b, b.X[:3], 4, np.random.default_rng(9))
    assert s1 == s2


def test_partial_settings_reach_the_sampler():
    space = compile_space({"x": hp.uniform("x", -5, 5)})
    history = run({"x": hp.uniform("x", -5, 5)}, lambda v: v["x"] ** 2, 12, seed=0)
    a = tpe.suggest(space, history, empty(space), 3, np.random.default_rng(1))
    algo = functools.partial(tpe.suggest, n_startup_jobs=100)
    b = algo(space, history, empty(space), 3, np.random.default_rng(1))
    assert a != b
    # still in start-up: a seeded space-filling draw, independent of the losses
    c = run({"x": hp.uniform("x", -5, 5)}, lambda v: -v["x"] ** 2, 12, seed=0, n_startup_jobs=100)
    d = run({"x": hp.uniform("x", -5, 5)}, lambda v: v["x"] ** 2, 12, seed=0, n_startup_jobs=100)
    np.testing.assert_array_equal(c.X, d.X)


@pytest.mark.parametrize(
    "settings, needle",
    [
        ({"gamma": 0.0}, "0.0"),
        ({"gamma": 1.5}, "1.5"),
        ({"gamma": "0.2"}, "'0.2'"),
        ({"liar": "median"}, "'median'"),
        ({"n_startup_jobs": -1}, "-1"),
        ({"n_EI_candidates": 0}, "0"),
        ({"prior_weight": 0.0}, "0.0"),
        ({"prior_weight": -2}, "-2"),
        ({"multivariate": "yes"}, "'yes'"),
        ({"n_ei_candidates": 5}, "n_ei_candidates"),
        ({"penalty": 1.0}, "1.0"),
        ({"penalty": -0.1}, "-0.1"),
        ({"penalty_radius": 0.0}, "0.0"),
        ({"n_startup_parallel": -1}, "-1"),
        ({"gamma_parallel": 0.0}, "0.0"),
        ({"n_EI_parallel": 0}, "0"),
        ({"cat_candidates": 0}, "0"),
        ({"liar_floor": -1.0}, "-1.0"),
        ({"parallel_min_params": -1}, "-1"),
        ({"liar_cat": "table"}, "'table'"),
        ({"cat_parallel": 0}, "0"),
        ({"local_share": 1.5}, "1.5"),
        ({"local_sequential": -0.1}, "-0.1"),
        ({"local_scale": 0}, "0"),
        ({"local_share": "half"}, "'half'"),
        ({"local_ramp": -1}, "-1"),
        ({"local_ramp": 2.5}, "2.5"),
        ({"local_ramp_pending": -0.5}, "-0.5"),
    ],
)
def test_invalid_settings_raise_algo_error_naming_the_value(settings, needle):
    space = compile_space({"x": hp.uniform("x", 0, 1)})
    with pytest.raises(AlgoError) as err:
        tpe.suggest(space, History(space), empty(space), 1, np.random.default_rng(0), **settings)
    assert needle in str(err.value)
    assert next(iter(settings)) in str(err.value)


def test_pchoice_prior_respected_during_startup():
    space = compile_space({"c": hp.pchoice("c", [(0.8, "a"), (0.15, "b"), (0.05, "c")]), "x": hp.uniform("x", 0, 1)})
    history = History(space)
    out = tpe.suggest(space, history, empty(space), 2000, np.random.default_rng(0), n_startup_jobs=10)
    freq = np.bincount([v["c"] for v in out], minlength=3) / len(out)
    np.testing.assert_allclose(freq, [0.8, 0.15, 0.05], atol=0.03)


def test_failed_trials_are_not_modelled_and_do_not_count_for_startup():
    space = compile_space({"x": hp.uniform("x", 0, 1)})
    history = History(space)
    for x in np.linspace(0, 1, 30):
        history.add({"x": float(x)}, None)
    assert history.n_ok == 0
    out = tpe.suggest(space, history, empty(space), 5, np.random.default_rng(0))
    assert all(0 <= v["x"] <= 1 for v in out)
    for i in range(12):
        history.add({"x": 0.1 + 0.01 * i}, float(i))
    out = tpe.suggest(space, history, empty(space), 5, np.random.default_rng(0))
    assert np.median([v["x"] for v in out]) < 0.5


def test_large_history_is_thinned_to_a_bounded_model(monkeypatch):
    # the cost of an ask is bounded by the kernels it fits, not by the history's length
    from distopt.algo import _propose  # noqa: PLC0415

    space = compile_space(MIXED)
    history = History(space)
    rng = np.random.default_rng(0)
    for _ in range(3000):
        vals = rand.suggest(space, history, empty(space), 1, rng)[0]
        history.add(vals, mixed_loss(vals))
    sizes = []
    real = _propose.Mixture

    def counting(group, obs, *args, **kwargs):
        sizes.append(len(obs))
        return real(group, obs, *args, **kwargs)

    monkeypatch.setattr(_propose, "Mixture", counting)
    out = tpe.suggest(space, history, history.X[:32], 5, rng, max_components=256)
    assert sizes and max(sizes) <= 256 + 32 + 5
    for vals in out:
        check_mixed(vals)


@pytest.mark.parametrize("settings", [{}, {"liar": "best"}, {"liar_bw": "good"}, {"multivariate": False}])
def test_asks_at_one_history_version_match_a_fresh_history(settings):
    """Densities reused between asks at one history version give the suggestions a
    freshly built history gives, with and without pending trials."""
    space = compile_space(MIXED)
    rng = np.random.default_rng(3)
    history = History(space)
    for _ in range(60):
        vals = rand.suggest(space, history, empty(space), 1, rng)[0]
        history.add(vals, mixed_loss(vals))
    pending = history.encode_many(rand.suggest(space, history, empty(space), 2, rng))
    for pend in (empty(space), pending, empty(space), pending[:1]):
        fresh = History(space)
        for i in range(history.n):
            fresh.add(history.decode(history.X[i]), float(history.losses[i]))
        a = tpe.suggest(space, history, pend, 2, np.random.default_rng(5), **settings)
        b = tpe.suggest(space, fresh, pend, 2, np.random.default_rng(5), **settings)
        assert a == b


def test_settings_equal_to_valid_ones_but_of_another_type_are_still_checked():
    space = compile_space(MIXED)
    history = run(MIXED, mixed_loss, 12, 0)
    tpe.suggest(space, history, empty(space), 1, np.random.default_rng(0), multivariate=True, n_EI_candidates=8)
    with pytest.raises(AlgoError, match="multivariate"):
        tpe.suggest(space, history, empty(space), 1, np.random.default_rng(0), multivariate=1, n_EI_candidates=8)
    with pytest.raises(AlgoError, match="n_EI_candidates"):
        tpe.suggest(space, history, empty(space), 1, np.random.default_rng(0), multivariate=True, n_EI_candidates=8.0)


def test_pending_kernels_added_to_the_bad_density_equal_one_mixture_over_all_kernels():
    # the bad density is fitted once per history and the lies added per ask: the sum must
    # be the density of a single mixture holding the bad, pending and prior kernels
    from distopt.algo._layout import internal, layout
    from distopt.algo.parzen import Mixture, MixtureSum

    lay = layout(compile_space(MIXED), True)
    (group,) = lay.groups
    rng = np.random.default_rng(3)
    history = run(MIXED, mixed_loss, 40, seed=3)
    Z = internal(lay, history.X)[:, group.cols]
    bad, pend = Z[:30], Z[30:]
    bad_w, pend_w = rng.uniform(0.5, 1.0, len(bad)), np.full(len(pend), 2.5)
    m = group.model
    first = Mixture(m, bad, bad_w, 1.5, "neighbor", 1.25)
    second = Mixture(m, pend, pend_w, 1.5, "neighbor", 1.25, prior=False, n_kernels=len(bad))
    rows = np.vstack([bad, pend])
    sigma = np.vstack([first.sigma[:-1], second.sigma])
    whole = Mixture(m, rows, np.append(bad_w, pend_w), 1.5, "neighbor", 1.25, sigma=sigma, n_kernels=len(bad))
    pts = m.points(first.sample(rng, 64))
    assert np.allclose(MixtureSum(first, second).log_pdf(pts), whole.log_pdf(pts), rtol=0, atol=1e-9)


def test_space_without_parameters_gives_empty_assignments():
    cs = compile_space({"x": 3, "name": "fixed"})
    history = History(cs)
    assert tpe.suggest(cs, history, empty(cs), 2, np.random.default_rng(0)) == [{}, {}]
    history.add({}, 1.0)
    assert tpe.suggest(cs, history, empty(cs), 1, np.random.default_rng(0)) == [{}]


@pytest.mark.parametrize("dims, shifted", [(2, False), (3, True)])
def test_parallel_exploitation_only_in_spaces_of_enough_parameters(dims, shifted):
    space = {f"x{i}": hp.uniform(f"x{i}", -5, 5) for i in range(dims)}
    history = run(space, lambda v: sum(x * x for x in v.values()), 30, seed=2)
    cs = compile_space(space)
    pending = history.X[-8:]

    def ask(**settings):  # local refinement has its own test (test_tpe_local)
        return tpe.suggest(cs, history, pending, 4, np.random.default_rng(5), local_share=0.0,
                           local_sequential=0.0, **settings)

    sequential = ask(gamma_parallel=None, n_EI_parallel=None)
    assert (ask() != sequential) is shifted
    assert ask(parallel_min_params=dims + 1) == sequential
