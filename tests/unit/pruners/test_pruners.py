"""Pruners against hand-computed medians and rungs, and against optuna's decisions."""

import numpy as np
import pytest

from distopt.errors import PrunerError
from distopt.pruners import (Curve, HyperbandPruner, MedianPruner, NopPruner, PercentilePruner, Snapshot,
                             SuccessiveHalvingPruner, make_pruner, pruner_from_json)


def snap(own, others, n_complete=None, tid=99, study="s"):
    """own: list of values at steps 0..; others: {tid: (values, complete)}."""
    curves = {t: Curve.of(range(len(v)), v, c) for t, (v, c) in others.items()}
    curves[tid] = Curve.of(range(len(own)), own)
    done = sum(c for _, c in others.values()) if n_complete is None else n_complete
    return Snapshot(tid, curves, done, study)


OTHERS = {0: ([5.0, 4.0, 3.0], True), 1: ([6.0, 5.0, 4.0], True), 2: ([7.0, 6.0, 5.0], True)}


def test_median_prunes_above_the_median_at_the_step():
    p = MedianPruner(n_startup_trials=1)
    # at step 2 the others hold 3, 4, 5: median 4; the trial's best so far is what counts
    assert p.prune(snap([9.0, 8.0, 4.5], OTHERS))
    assert not p.prune(snap([9.0, 8.0, 3.5], OTHERS))
    assert not p.prune(snap([9.0, 3.9, 4.5], OTHERS))  # best 3.9 (step 1) < 4
    assert not p.prune(snap([9.0, 8.0, 4.0], OTHERS))  # equal is kept


def test_median_uses_running_and_pruned_trials_values_too():
    others = dict(OTHERS)
    others[3] = ([0.1, 0.1, 0.1], False)
    others[4] = ([0.2, 0.2, 0.2], False)  # values now 3, 4, 5, 0.1, 0.2: median 3
    assert MedianPruner(n_startup_trials=1).prune(snap([9.0, 9.0, 3.5], others))


def test_percentile():
    # values at step 1: 4, 5, 6 -> 25th percentile 4.5
    p = PercentilePruner(25.0, n_startup_trials=0)
    assert p.prune(snap([9.0, 4.6], OTHERS))
    assert not p.prune(snap([9.0, 4.4], OTHERS))


def test_median_startup_warmup_interval_and_min_trials():
    bad = [9.0] * 7
    others = {t: ([1.0] * 7, True) for t in range(3)}
    assert not MedianPruner(n_startup_trials=4).prune(snap(bad[:3], others))
    assert MedianPruner(n_startup_trials=3).prune(snap(bad[:3], others))
    p = MedianPruner(n_startup_trials=0, n_warmup_steps=2, interval_steps=3)
    # checks at the first report at or after steps 2, 5, 8...
    assert [p.prune(snap(bad[: s + 1], others)) for s in range(7)] == [False, False, True, False, False, True, False]
    assert not MedianPruner(n_startup_trials=0, n_min_trials=4).prune(snap(bad[:3], others))
    # no trial complete: never (optuna's rule)
    assert not MedianPruner(n_startup_trials=0).prune(snap(bad[:3], {0: ([1.0] * 7, False)}))


def test_median_nan_is_pruned_and_sparse_reports_interval():
    assert MedianPruner(n_startup_trials=0).prune(snap([float("nan")], OTHERS))
    p = MedianPruner(n_startup_trials=0, interval_steps=10)
    curves = {0: Curve.of([0, 10, 20], [1.0, 1.0, 1.0], True), 9: Curve.of([0, 7, 13], [5.0, 5.0, 5.0])}
    # 13 is the first report at or after 10, but no other trial reported at 13
    assert not p.prune(Snapshot(9, curves, 1))
    curves[9] = Curve.of([0, 7, 10], [5.0, 5.0, 5.0])
    assert p.prune(Snapshot(9, curves, 1))


def test_asha_rungs_by_hand():
    p = SuccessiveHalvingPruner(min_resource=1, reduction_factor=2)  # rungs at steps 1, 2, 4, 8
    others = {0: ([0.0, 0.1, 0.1], False), 1: ([0.0, 0.5, 0.5], False), 2: ([0.0, 0.9, 0.9], True)}
    # rung 0 (step 1): competing 0.1, 0.5, 0.9 and own: keep the best 4 // 2 = 2
    assert p.prune(snap([0.0, 0.6], others))
    assert not p.prune(snap([0.0, 0.4], others))
    # step 0 is before the first rung: nothing to judge
    assert not p.prune(snap([9.0], others))
    # step 3 lies between rungs 1 (2) and 2 (4): judged at neither again
    assert not p.prune(snap([0.0, 0.4, 0.4, 9.0], others))


def test_asha_first_trials_must_be_the_best_and_bootstrap():
    p = SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)
    others = {0: ([0.0, 0.5], False)}
    assert p.prune(snap([0.0, 0.6], others))  # fewer than eta competing: only the best goes on
    assert not p.prune(snap([0.0, 0.4], others))
    boot = SuccessiveHalvingPruner(min_resource=1, reduction_factor=3, bootstrap_count=2)
    assert boot.prune(snap([0.0, 0.4], others))  # two reached the rung, not more than 2


def test_asha_sparse_reports_use_the_first_value_past_a_rung():
    p = SuccessiveHalvingPruner(min_resource=2, reduction_factor=2)  # rungs 2, 4, 8
    curves = {0: Curve.of([0, 3, 5], [1.0, 0.2, 0.1]), 1: Curve.of([0, 2, 4], [1.0, 0.3, 0.3]),
              9: Curve.of([0, 5], [1.0, 0.25])}
    # trial 9's first report past step 2 is step 5 (0.25): rung 2 competitors 0.2 (step 3), 0.3 -> keep 1 of 3:
    # idx max(3 // 2 - 1, 0) = 0 -> best only: 0.2 < 0.25 -> pruned
    assert p.prune(Snapshot(9, curves, 0))


def test_asha_auto_min_resource():
    p = SuccessiveHalvingPruner(reduction_factor=2)
    curves = {0: Curve.of(range(300), np.linspace(1, 0, 300), True), 9: Curve.of([0, 1, 2, 3], [9, 9, 9, 9])}
    # longest complete curve ends at 299 -> min_resource 2: rungs 2, 4, ...; step 3 passes none newly
    assert not p.prune(Snapshot(9, curves, 1))
    curves[9] = Curve.of([0, 1, 2], [9, 9, 9])
    assert p.prune(Snapshot(9, curves, 1))
    assert not p.prune(Snapshot(9, {9: curves[9]}, 0))  # none complete: no estimate


def test_hyperband_budgets_and_brackets():
    p = HyperbandPruner(min_resource=1, max_resource=9, reduction_factor=3)
    assert p.budgets(9) == [9, 5, 3]
    brackets = [p.bracket("s", t, [9, 5, 3]) for t in range(1700)]
    share = np.bincount(brackets) / len(brackets)
    assert np.allclose(share, [9 / 17, 5 / 17, 3 / 17], atol=0.04)


def test_nop_and_specs():
    assert not NopPruner().prune(snap([1e9] * 5, OTHERS))
    assert isinstance(make_pruner(None), NopPruner)
    for name in ("median", "asha", "hyperband", "percentile", "none"):
        p = make_pruner(name)
        assert pruner_from_json(p.to_json()) == p
    assert make_pruner({"name": "asha", "min_resource": 2}).min_resource == 2
    with pytest.raises(PrunerError, match="unknown pruner 'medain'"):
        make_pruner("medain")
    with pytest.raises(PrunerError, match="does not take"):
        make_pruner({"name": "median", "percentile": 3})
    for bad in (lambda: MedianPruner(n_warmup_steps=-1), lambda: PercentilePruner(101),
                lambda: SuccessiveHalvingPruner(reduction_factor=1), lambda: HyperbandPruner(max_resource="big"),
                lambda: SuccessiveHalvingPruner(bootstrap_count=1)):
        with pytest.raises(PrunerError):
            bad()


# -- the same decisions as optuna, on interleaved asynchronous curves -------------------
optuna = pytest.importorskip("optuna")


def _replay(ours, theirs, seed, n_trials=40, n_steps=20, q=4):
    """Run trials q at a time, one report per turn in random order; compare every decision."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rng = np.random.default_rng(seed)
    study = optuna.create_study(pruner=theirs, study_name="s", sampler=optuna.samplers.RandomSampler(seed))
    curves: dict[int, Curve] = {}
    active: dict[int, tuple] = {}
    started, decisions, n_complete = 0, 0, 0
    while started < n_trials or active:
        while len(active) < q and started < n_trials:
            t = study.ask()
            active[t.number] = (t, rng.uniform(0.2, 1.0), rng.uniform(0.05, 0.5), [], [])
            started += 1
        tid = int(rng.choice(list(active)))
        t, final, speed, steps, values = active[tid]
        step = len(steps)
        v = final + np.exp(-speed * step) + rng.normal(0, 0.02)
        steps.append(step)
        values.append(v)
        t.report(v, step)
        curves[tid] = Curve.of(steps, values)
        mine = ours.prune(Snapshot(tid, curves, n_complete, "s"))
        assert mine == t.should_prune(), f"trial {tid} step {step}"
        decisions += 1
        if mine:
            study.tell(t, state=optuna.trial.TrialState.PRUNED)
            del active[tid]
        elif step == n_steps - 1:
            study.tell(t, v)
            curves[tid] = Curve.of(steps, values, True)
            n_complete += 1
            del active[tid]
    return decisions, sum(t.state == optuna.trial.TrialState.PRUNED for t in study.trials)


@pytest.mark.parametrize("seed", range(4))
def test_asha_decides_as_optuna(seed):
    _, pruned = _replay(SuccessiveHalvingPruner(min_resource=1, reduction_factor=3),
                        optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3), seed)
    assert pruned > 10
    _replay(SuccessiveHalvingPruner(min_resource=2, reduction_factor=2, min_early_stopping_rate=1),
            optuna.pruners.SuccessiveHalvingPruner(min_resource=2, reduction_factor=2, min_early_stopping_rate=1),
            seed)


@pytest.mark.parametrize("seed", range(4))
def test_hyperband_decides_as_optuna(seed):
    _, pruned = _replay(HyperbandPruner(min_resource=1, max_resource=20, reduction_factor=3),
                        optuna.pruners.HyperbandPruner(min_resource=1, max_resource=20, reduction_factor=3), seed)
    assert pruned > 5


@pytest.mark.parametrize("make, message", [
    (lambda: PercentilePruner(percentile=101), "PercentilePruner: percentile must be a number in \\[0, 100\\]"),
    (lambda: PercentilePruner(percentile=True), "percentile must be a number"),
    (lambda: SuccessiveHalvingPruner(bootstrap_count=2), "needs a min_resource, not 'auto'"),
    (lambda: HyperbandPruner(bootstrap_count=2), "needs a max_resource, not 'auto'"),
    (lambda: HyperbandPruner(bootstrap_count=-1), "bootstrap_count must be an integer >= 0"),
])
def test_option_checks_name_the_pruner_the_option_and_the_fix(make, message):
    with pytest.raises(PrunerError, match=message):
        make()
