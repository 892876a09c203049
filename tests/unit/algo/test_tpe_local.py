"""Local refinement: a share of the asks draws its candidates around the best finished
trials (the best one's branch and categories, a narrow kernel at the weighted mean of the
best few) instead of from the good density."""

from __future__ import annotations

import math

import numpy as np
import pytest

from distopt.algo import History, rand, tpe
from distopt.space import compile_space, hp

SPACE = hp.choice("m", [
    {"a": hp.uniform("a", -5, 5), "b": hp.loguniform("b", -4, 4), "k": hp.choice("k", ["x", "y", "z"])},
    {"d": hp.uniform("d", -5, 5)},
])


def loss(v) -> float:
    if v["m"] == 0:
        return (v["a"] - 1) ** 2 + math.log(v["b"]) ** 2 + 0.5 * (v["k"] != 1)
    return 5.0 + abs(v["d"])


@pytest.fixture(scope="module")
def setup():
    cs = compile_space(SPACE)
    history = History(cs)
    for vals in rand.suggest(cs, history, np.empty((0, len(cs))), 40, np.random.default_rng(3)):
        history.add(vals, loss(vals))
    best = history.decode(history.X[int(np.argmin(history.losses))])
    return cs, history, best


def asks(setup, n_pending: int, **settings) -> list[dict]:
    """Asks centred on the best trial itself (``local_mu`` 1) unless the settings say."""
    cs, history, _ = setup
    settings = {"local_mu": 1, **settings}
    pending = history.X[-n_pending:] if n_pending else np.empty((0, len(cs)))
    return [tpe.suggest(cs, history, pending, 1, np.random.default_rng(s), **settings)[0] for s in range(40)]


def near_best(vals: dict, best: dict) -> bool:
    """On the best trial's branch with its category, within a tenth of the ranges."""
    return (vals["m"] == best["m"] and vals.get("k") == best.get("k")
            and abs(vals["a"] - best["a"]) < 1.0 and abs(math.log(vals["b"] / best["b"])) < 0.8)


def test_a_wide_queue_refines_around_the_best_trial(setup):
    best = setup[2]
    assert best["m"] == 0
    local = asks(setup, 30, local_share=1.0)
    drawn = asks(setup, 30, local_share=0.0)
    n_local, n_drawn = sum(near_best(v, best) for v in local), sum(near_best(v, best) for v in drawn)
    # with 30 pending an ask is local with probability 30/31 (the lies still push some of
    # them past a tenth of the range); the drawn asks rarely land there
    assert n_local >= 15 and n_drawn <= 5, (n_local, n_drawn)


def test_in_a_space_with_branches_the_queued_local_share_ramps_up_with_progress(setup):
    best = setup[2]
    # 40 finished + 3 x 30 pending is past the default ramp: as without one
    full = asks(setup, 30, local_share=1.0, local_ramp=0)
    assert asks(setup, 30, local_share=1.0) == full
    # a ramp far from reached keeps the queue's asks drawn from l
    held = asks(setup, 30, local_share=1.0, local_ramp=10 ** 6)
    n_full, n_held = sum(near_best(v, best) for v in full), sum(near_best(v, best) for v in held)
    assert n_held <= 5 and n_full >= 15, (n_held, n_full)
    # the ramp counts pending trials local_ramp_pending times: 40 + 3 x 30 = 130 reaches it
    assert asks(setup, 30, local_share=1.0, local_ramp=130) == full
    assert asks(setup, 30, local_share=1.0, local_ramp=130, local_ramp_pending=1.0) != full


def test_the_ramp_leaves_sequential_asks_and_spaces_without_branches_alone(setup):
    assert asks(setup, 0, local_sequential=1.0, local_ramp=10 ** 6) == asks(setup, 0, local_sequential=1.0, local_ramp=0)
    space = {"x": hp.uniform("x", -5, 5), "y": hp.uniform("y", -5, 5), "z": hp.uniform("z", -5, 5)}
    cs = compile_space(space)
    history = History(cs)
    for vals in rand.suggest(cs, history, np.empty((0, 3)), 20, np.random.default_rng(0)):
        history.add(vals, vals["x"] ** 2 + vals["y"] ** 2 + vals["z"] ** 2)

    def ask(**settings):
        return [tpe.suggest(cs, history, history.X[-8:], 1, np.random.default_rng(s), local_share=1.0, **settings)[0]
                for s in range(20)]

    assert ask(local_ramp=10 ** 6) == ask(local_ramp=0)


def test_local_asks_still_spread_by_the_pending_trials(setup):
    cs, history, best = setup
    row = history.encode(best)[None, :]
    crowded = np.repeat(row, 30, axis=0)  # 30 trials running on the best point itself
    pts = [tpe.suggest(cs, history, crowded, 1, np.random.default_rng(s), local_share=1.0, local_mu=1)[0]
           for s in range(40)]
    far = [tpe.suggest(cs, history, history.X[-30:], 1, np.random.default_rng(s), local_share=1.0, local_mu=1)[0]
           for s in range(40)]

    def dist(v):
        return abs(v["a"] - best["a"]) + abs(math.log(v["b"] / best["b"])) if v["m"] == 0 else math.inf

    assert np.median([dist(v) for v in pts]) > np.median([dist(v) for v in far])


def test_without_pending_trials_only_local_sequential_asks_are_local(setup):
    best = setup[2]
    base = asks(setup, 0, local_share=0.0, local_sequential=0.0)
    assert asks(setup, 0, local_share=1.0, local_sequential=0.0) == base
    seq = asks(setup, 0, local_sequential=1.0)
    assert sum(near_best(v, best) for v in seq) == len(seq) > sum(near_best(v, best) for v in base)


def test_local_scale_sets_how_close(setup):
    best = setup[2]

    def spread(scale):
        return np.median([abs(v["a"] - best["a"]) for v in asks(setup, 0, local_sequential=1.0, local_scale=scale)])

    assert spread(0.05) < spread(0.25) < spread(1.0)


def test_local_asks_where_the_best_trial_is_inactive_come_from_the_model():
    # the best trial sits on a branch without parameters; asks on the other branch still work
    space = hp.choice("m", [{"c": 0}, {"x": hp.uniform("x", 0, 1), "y": hp.uniform("y", 0, 1)}])
    cs = compile_space(space)
    history = History(cs)
    for vals in rand.suggest(cs, history, np.empty((0, len(cs))), 20, np.random.default_rng(0)):
        history.add(vals, 0.0 if vals["m"] == 0 else 1.0 + vals["x"])
    out = [tpe.suggest(cs, history, np.empty((0, 3)), 1, np.random.default_rng(s), local_sequential=1.0)[0]
           for s in range(20)]
    assert all(v["m"] == 0 for v in out)  # the local kernel keeps the best trial's branch
    assert all(set(v) == {"m"} for v in out)


def test_in_small_spaces_a_queue_does_not_refine():
    # under parallel_min_params the pending trials already crowd the promising region
    space = {"x": hp.uniform("x", -5, 5), "y": hp.uniform("y", -5, 5)}
    cs = compile_space(space)
    history = History(cs)
    for vals in rand.suggest(cs, history, np.empty((0, 2)), 30, np.random.default_rng(0)):
        history.add(vals, vals["x"] ** 2 + vals["y"] ** 2)

    def ask(**settings):
        return [tpe.suggest(cs, history, history.X[-8:], 1, np.random.default_rng(s), **settings)[0] for s in range(20)]

    plain = ask(local_share=0.0, local_sequential=0.0)
    assert ask(local_share=1.0, local_sequential=1.0) == plain


def noisy_bowls(n: int = 3) -> tuple:
    """Three histories of 60 random trials on a bowl at the origin under noise as large
    as the bowl's spread near it: there the best trial is partly the luckiest draw."""
    space = {"x": hp.uniform("x", -5, 5), "y": hp.uniform("y", -5, 5), "z": hp.uniform("z", -5, 5)}
    cs = compile_space(space)
    out = []
    for seed in range(n):
        history = History(cs)
        noise = np.random.default_rng(seed + 1)
        for vals in rand.suggest(cs, history, np.empty((0, 3)), 60, np.random.default_rng(seed)):
            history.add(vals, vals["x"] ** 2 + vals["y"] ** 2 + vals["z"] ** 2 + 8.0 * noise.standard_normal())
        out.append(history)
    return cs, out


def test_queued_local_asks_centre_on_the_weighted_mean_of_the_best_trials():
    cs, histories = noisy_bowls()
    queue = np.full((20, 3), 4.9)  # 20 trials running in a far corner: nearly every ask is local

    def distance(pending: np.ndarray, mu: int, **settings) -> float:
        out = [tpe.suggest(cs, history, pending, 1, np.random.default_rng(s), local_mu=mu, **settings)[0]
               for history in histories for s in range(30)]
        return float(np.median([math.hypot(v["x"], v["y"], v["z"]) for v in out]))

    # the weighted mean of the best eight is the better guess of where the minimum lies
    assert distance(queue, 8, local_share=1.0) < 0.8 * distance(queue, 1, local_share=1.0)
    # a sequential local ask keeps the best trial as its centre
    alone = np.empty((0, 3))
    assert distance(alone, 8, local_sequential=1.0) == distance(alone, 1, local_sequential=1.0)


def test_the_centre_weighs_the_best_first_and_keeps_to_the_best_trials_categories():
    from distopt.algo._propose import _centre
    from distopt.algo.parzen import GroupModel

    cs = compile_space({"a": hp.uniform("a", 0, 10), "k": hp.choice("k", ["x", "y"])})
    model = GroupModel(cs.params)
    a, k = int(model.num[0]), int(model.cat[0])
    rows = np.zeros((5, 2))
    rows[:, a] = [1.0, 3.0, 100.0, 5.0, 7.0]
    rows[:, k] = [0, 0, 1, 0, 0]  # the third row has another category: left out
    w = np.log(4.5) - np.log([1.0, 2.0, 3.0, 4.0])
    assert _centre(model, rows, 4)[0, a] == pytest.approx((w / w.sum()) @ [1.0, 3.0, 5.0, 7.0])
    assert _centre(model, rows, 4)[0, k] == 0
    assert _centre(model, rows, 1)[0, a] == 1.0  # the best trial itself
    inactive = rows.copy()
    inactive[1:, a] = np.nan  # no other row is active: the best trial itself
    assert _centre(model, inactive, 4)[0, a] == 1.0


def test_local_mu_must_be_a_positive_integer():
    cs = compile_space({"x": hp.uniform("x", 0, 1)})
    for bad in (0, 2.5, "8", True):
        with pytest.raises(tpe.AlgoError, match="local_mu"):
            tpe.suggest(cs, History(cs), np.empty((0, 1)), 1, np.random.default_rng(0), local_mu=bad)


def test_pruned_trials_never_pull_the_centre_of_a_queued_local_ask():
    # three complete trials near the origin, twelve pruned far from it: the eight "best"
    # would otherwise include pruned ones and centre the asks between the two
    cs = compile_space({"x": hp.uniform("x", -5, 5), "y": hp.uniform("y", -5, 5), "z": hp.uniform("z", -5, 5)})
    history = History(cs)
    for i, x in enumerate((0.2, -0.2, 0.0)):
        history.add({"x": x, "y": 0.1 * i, "z": -0.1 * i}, float(i))
    for i in range(12):
        history.add_pruned({"x": 4.0 + 0.05 * i, "y": 4.0, "z": 4.0}, step=i, value=10.0)
    queue = np.full((20, 3), -4.9)
    out = [tpe.suggest(cs, history, queue, 1, np.random.default_rng(s), local_share=1.0, local_mu=8)[0]
           for s in range(30)]
    # the complete trials' weighted mean lies at x = 0.07; with five pruned ones among the
    # eight it would lie at x = 1.3, and the asks around 0.6
    assert np.median([v["x"] for v in out]) < 0.4, sorted(round(v["x"], 2) for v in out)


def test_the_centre_averages_at_most_mu_rows_from_the_good_group_and_the_next_local_mu():
    from distopt.algo._layout import layout, observed
    from distopt.algo._propose import _centre, n_good, split
    from distopt.algo.parzen import GroupModel

    cs, histories = noisy_bowls(1)
    history = histories[0]
    cfg, model = tpe._validated({})
    obs = observed(layout(cs, True), history)
    top = split(obs, np.empty((0, 3)), model).top
    assert len(top) == n_good(60, model) + cfg["local_mu"] == 17
    assert np.array_equal(top, obs.Z[:17])

    one = compile_space({"a": hp.uniform("a", 0, 10)})
    rows = np.arange(1.0, 7.0)[:, None]  # six rows, best first
    w = np.log(4.5) - np.log([1.0, 2.0, 3.0, 4.0])
    assert _centre(GroupModel(one.params), rows, 4)[0, 0] == pytest.approx((w / w.sum()) @ [1.0, 2.0, 3.0, 4.0])


def test_queued_local_asks_at_the_default_local_mu_keep_the_best_trials_branch_and_category(setup):
    best = setup[2]
    out = asks(setup, 30, local_share=1.0, local_mu=tpe.DEFAULTS["local_mu"])
    kept = sum(v["m"] == best["m"] and v.get("k") == best.get("k") for v in out)
    # an ask is local with probability 30/31; the others are drawn from l
    assert kept >= 35, kept


@pytest.mark.parametrize("multivariate", [True, False])
def test_the_centre_averages_only_trials_with_the_best_trials_categories_in_every_group(multivariate):
    # with multivariate=False (or a category in another group than the numbers it moves)
    # the group's own categories say nothing: the whole trial's must match
    cs = compile_space({"k": hp.choice("k", ["a", "b"]), "x": hp.uniform("x", -5, 5), "y": hp.uniform("y", -5, 5)})
    history = History(cs)
    history.add({"k": 0, "x": 0.0, "y": 0.0}, 0.0)
    for i in range(9):
        history.add({"k": 1, "x": 4.0 + 0.05 * i, "y": 0.1 * i}, 1.0 + i)
    for i in range(6):
        history.add({"k": 1, "x": -4.0, "y": 4.0 - 0.1 * i}, 20.0 + i)
    queue = np.full((20, 3), -4.9)
    queue[:, 0] = 1
    # a narrow local kernel puts the asks at the centre, whatever l/g prefers around it
    out = [tpe.suggest(cs, history, queue, 1, np.random.default_rng(s), local_share=1.0, local_scale=0.01,
                       multivariate=multivariate)[0] for s in range(30)]
    local = [v for v in out if v["k"] == 0]
    assert len(local) >= 25 and np.median([abs(v["x"]) for v in local]) < 0.5, sorted(round(v["x"], 1) for v in out)
