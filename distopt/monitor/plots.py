"""Figures of a search: loss history, parameter traces, parameter histograms.

Each function takes a ``Study``, a ``Trials`` or a ``StudySnapshot`` (a study read from
Redis: ``read_study(url, name)``), saves a PNG when ``out`` is given and returns the
matplotlib ``Figure``. Figures are drawn on the Agg canvas directly, never through
pyplot, so plotting neither needs a display nor changes the backend of a user's session.
Needs ``pip install distopt[plot]``.
"""

from __future__ import annotations

import math
import os
from typing import Any, Sequence

import numpy as np

from ..errors import PlotError, require
from ..trial.record import TrialRecord, TrialState, may_be_best
from ..study.snapshot import StudySnapshot, as_snapshot
from ..space import Choice, Expr
from ..space.compile import ParamSpec

_OK_COLOR = "#1f77b4"
_BEST_COLOR = "#d62728"
_FAIL_COLOR = "#7f7f7f"
_CMAP = "viridis_r"


def _mpl() -> tuple[Any, Any]:
    require("matplotlib", "plot", "plotting")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    return Figure, FigureCanvasAgg


def _figure(width: float, height: float) -> Any:
    Figure, FigureCanvasAgg = _mpl()
    fig = Figure(figsize=(width, height), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Any, out: str | os.PathLike[str] | None) -> Any:
    if out is not None:
        fig.savefig(os.fspath(out), dpi=110)
    return fig


def _title(snap: StudySnapshot, what: str) -> str:
    return f"{what} — {snap.name}" if snap.name else what


def trial_counts(snap: StudySnapshot) -> str:
    """"41 trials: 35 ok, 4 failed, 2 other": one count, the same in every plot's title
    (pruned trials counted apart when there are any)."""
    ok = sum(1 for r in snap.records if r.state == TrialState.OK)
    fail = sum(1 for r in snap.records if r.state == TrialState.FAIL)
    pruned = sum(1 for r in snap.records if r.state == TrialState.PRUNED)
    other = len(snap.records) - ok - fail - pruned
    parts = [f"{ok} ok", f"{fail} failed"] + ([f"{pruned} pruned"] if pruned else []) + \
        ([f"{other} other"] if other else [])
    return f"{len(snap.records)} trials: {', '.join(parts)}"


def _finite(rec: TrialRecord) -> bool:
    return may_be_best(rec.state == TrialState.OK, rec.loss)


# -- history -----------------------------------------------------------------------------
def plot_history(source: Any, out: str | os.PathLike[str] | None = None) -> Any:
    """Loss of every successful trial in trial order, with the running best as a step line
    and failed trials as ticks along the bottom."""
    snap = as_snapshot(source)
    ok = [r for r in snap.records if _finite(r)]
    if not ok:
        raise PlotError(f"study {snap.name or '(unnamed)'} has no trial that finished with a loss yet; nothing to plot")
    fig = _figure(8.0, 4.2)
    ax = fig.add_subplot()
    tids = np.array([r.tid for r in ok])
    losses = np.array([float(r.loss) for r in ok])  # type: ignore[arg-type]
    best = np.minimum.accumulate(losses)
    ax.scatter(tids, losses, s=14, color=_OK_COLOR, alpha=0.55, linewidths=0, label="trial loss")
    ax.step(tids, best, where="post", color=_BEST_COLOR, linewidth=2, label="best so far")
    i = int(np.argmin(losses))
    ax.scatter([tids[i]], [losses[i]], s=90, marker="*", color=_BEST_COLOR, zorder=3,
               label=f"best: {losses[i]:.4g} (trial {tids[i]})")
    fails = [r.tid for r in snap.records if r.state == TrialState.FAIL]
    if fails:
        ax.plot(fails, np.full(len(fails), 0.02), "|", color=_FAIL_COLOR, markersize=12, markeredgewidth=1.5,
                transform=ax.get_xaxis_transform(), label=f"failed ({len(fails)})")
    return _finish_lines(fig, ax, out, losses, "trial", "loss",
                         _title(snap, f"Optimization history, {trial_counts(snap)}"))


# -- parameters ----------------------------------------------------------------------------
def _specs(snap: StudySnapshot) -> list[ParamSpec | None]:
    if snap.compiled is not None:
        return list(snap.compiled.params)
    return [None] * len(snap.labels)


def _choices(space: Any) -> dict[str, Choice]:
    """Every choice node of the space by label, to name its options on an axis."""
    found: dict[str, Choice] = {}
    stack = [space]
    while stack:
        node = stack.pop()
        if isinstance(node, Choice):
            found[node.label] = node
            stack.extend(node.options)
        elif isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, (list, tuple)):
            stack.extend(node)
        elif isinstance(node, Expr):
            stack.extend(node.args)
    return found


def _option_names(snap: StudySnapshot, label: str, n: int) -> list[str]:
    choice = _choices(snap.space).get(label) if snap.space is not None else None
    if choice is None:
        return [str(i) for i in range(n)]
    names = []
    for i, option in enumerate(choice.options):
        simple = option is None or isinstance(option, (str, int, float, bool))
        names.append(str(option)[:14] if simple else f"option {i}")
    return names


def _grid(n: int, width: float, height: float) -> tuple[Any, list[Any]]:
    cols = n if n <= 3 else 2 if n == 4 else 3
    rows = math.ceil(n / cols)
    fig = _figure(width * cols + 1.2, height * rows + 0.6)
    axes = [fig.add_subplot(rows, cols, i + 1) for i in range(n)]
    return fig, axes


def _values(snap: StudySnapshot, label: str, records: Sequence[TrialRecord]) -> tuple[np.ndarray, np.ndarray, list[TrialRecord]]:
    kept = [r for r in records if label in r.vals and isinstance(r.vals[label], (int, float))]
    return np.array([r.tid for r in kept]), np.array([float(r.vals[label]) for r in kept]), kept


def _style_axis(ax: Any, snap: StudySnapshot, label: str, spec: ParamSpec | None, values: np.ndarray, axis: str) -> None:
    set_scale = ax.set_yscale if axis == "y" else ax.set_xscale
    if spec is not None and spec.kind == "cat":
        names = _option_names(snap, label, spec.n_options)
        (ax.set_yticks if axis == "y" else ax.set_xticks)(range(spec.n_options), names)
    elif spec is not None and spec.log and values.size and values.min() > 0:
        set_scale("log")


def _require_trials(snap: StudySnapshot) -> None:
    if not snap.records or not snap.labels:
        raise PlotError(f"study {snap.name or '(unnamed)'} has no trials with parameters yet; nothing to plot")


def plot_params(source: Any, out: str | os.PathLike[str] | None = None) -> Any:
    """Each parameter's value in trial order, colored by the trial's loss (failed trials
    grey): shows where the sampler concentrated as the search went on."""
    snap = as_snapshot(source)
    _require_trials(snap)
    _mpl()
    from matplotlib.colors import LogNorm, Normalize

    done = [r for r in snap.records if _finite(r)]
    losses = np.array([float(r.loss) for r in done]) if done else np.array([0.0, 1.0])  # type: ignore[arg-type]
    lo, hi = float(losses.min()), float(np.quantile(losses, 0.95))
    use_log = lo > 0 and hi / lo > 1e3
    norm = LogNorm(lo, max(hi, lo * 1.0001)) if use_log else Normalize(lo, hi if hi > lo else lo + 1e-12)
    fig, axes = _grid(len(snap.labels), 4.0, 2.7)
    mappable = None
    for ax, label, spec in zip(axes, snap.labels, _specs(snap)):
        tids, values, _ = _values(snap, label, done)
        _, f_values, failed = _values(snap, label, [r for r in snap.records if r.state == TrialState.FAIL])
        if failed:
            ax.scatter([r.tid for r in failed], f_values, s=16, marker="x", color=_FAIL_COLOR, linewidths=1)
        if tids.size:
            colors = np.array([float(r.loss) for r in done if label in r.vals and isinstance(r.vals[label], (int, float))])  # type: ignore[arg-type]
            order = np.argsort(-colors)  # best trials drawn last, on top
            if spec is not None and spec.kind == "cat":  # spread the overlapping dots a little
                values = values + np.random.default_rng(0).uniform(-0.12, 0.12, values.size)
            mappable = ax.scatter(tids[order], values[order], c=colors[order], cmap=_CMAP, norm=norm, s=16,
                                  linewidths=0, alpha=0.9)
        _style_axis(ax, snap, label, spec, np.concatenate([values, f_values]), "y")
        ax.set_title(label, fontsize=10)
        ax.set_xlabel("trial", fontsize=9)
        ax.grid(True, alpha=0.3)
    if mappable is not None:
        fig.colorbar(mappable, ax=axes, label="loss" + (" (log)" if use_log else ""), shrink=0.9)
    fig.suptitle(_title(snap, f"Parameters by trial, colored by loss, {trial_counts(snap)}"))
    return _save(fig, out)


def _bins(spec: ParamSpec | None, values: np.ndarray) -> np.ndarray:
    """Bin edges shared by both histograms: one bin per value for integer and quantized
    parameters, log-spaced for log parameters, up to 30 equal bins otherwise."""
    lo, hi = float(values.min()), float(values.max())
    step = 1.0 if spec is not None and spec.kind == "int" else (spec.q if spec is not None else None)
    if step and (hi - lo) / step <= 60:
        return np.arange(lo - step / 2, hi + step, step)
    if hi <= lo:
        return np.array([lo - 0.5, lo + 0.5])
    n = min(30, max(8, int(2 * math.sqrt(values.size))))  # fewer, wider bins for few trials
    if spec is not None and spec.log and lo > 0:
        return np.geomspace(lo, hi, n + 1)
    return np.linspace(lo, hi, n + 1)


def plot_hist(source: Any, out: str | os.PathLike[str] | None = None) -> Any:
    """Histogram of each parameter's sampled values, with the best fifth of the finished
    trials overlaid: where the sampler looked against where the good results were."""
    snap = as_snapshot(source)
    _require_trials(snap)
    done = sorted((r for r in snap.records if _finite(r)), key=lambda r: r.loss)  # type: ignore[arg-type, return-value]
    top = done[: max(1, len(done) // 5)] if done else []
    fig, axes = _grid(len(snap.labels), 4.0, 2.7)
    from matplotlib.ticker import MaxNLocator

    for ax, label, spec in zip(axes, snap.labels, _specs(snap)):
        _, values, _ = _values(snap, label, snap.records)
        _, best, _ = _values(snap, label, top)
        if spec is not None and spec.kind == "cat":
            n = spec.n_options
            counts = np.bincount(values.astype(int), minlength=n)[:n]
            best_counts = np.bincount(best.astype(int), minlength=n)[:n]
            ax.bar(range(n), counts, color=_OK_COLOR, alpha=0.45, label="all trials")
            ax.bar(range(n), best_counts, color=_BEST_COLOR, alpha=0.8, width=0.5, label="best 20%")
        elif values.size:
            bins = _bins(spec, values)
            ax.hist(values, bins=bins, color=_OK_COLOR, alpha=0.45, label="all trials")
            if best.size:
                ax.hist(best, bins=bins, color=_BEST_COLOR, alpha=0.8, label="best 20%")
        _style_axis(ax, snap, label, spec, values, "x")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(label, fontsize=10)
        ax.set_ylabel("trials", fontsize=9)
        ax.grid(True, alpha=0.3, axis="y")
    axes[0].legend(frameon=False, fontsize=8)
    fig.suptitle(_title(snap, f"Sampled values, {trial_counts(snap)}"))
    return _save(fig, out)


# -- learning curves -------------------------------------------------------------------------
_PRUNED_COLOR = "#ff7f0e"


def plot_curves(source: Any, out: str | os.PathLike[str] | None = None) -> Any:
    """Every trial's intermediate values by step: complete trials in blue, pruned ones in
    orange with an x where they stopped, the best trial's curve in red."""
    snap = as_snapshot(source)
    curves = {t: c for t, c in snap.curves.items() if c.steps}
    if not curves:
        raise PlotError(f"study {snap.name or '(unnamed)'} has no intermediate values yet (report them with "
                        "distopt.report(step, value) in the objective); nothing to plot")
    states = {r.tid: r.state for r in snap.records}
    best = snap.best
    fig = _figure(8.0, 4.6)
    ax = fig.add_subplot()
    counts = {"pruned": 0, "other": 0}
    for tid, c in sorted(curves.items()):
        order = np.argsort(c.steps, kind="stable")
        steps, values = np.asarray(c.steps)[order], np.asarray(c.values, dtype=float)[order]
        if states.get(tid) == TrialState.PRUNED:
            counts["pruned"] += 1
            ax.plot(steps, values, color=_PRUNED_COLOR, alpha=0.35, linewidth=0.9)
            ax.scatter(steps[-1:], values[-1:], marker="x", s=22, color=_PRUNED_COLOR, zorder=3,
                       label="pruned (stopped here)" if counts["pruned"] == 1 else None)
        else:
            counts["other"] += 1
            ax.plot(steps, values, color=_OK_COLOR, alpha=0.45, linewidth=0.9,
                    label="complete or running" if counts["other"] == 1 else None)
    if best is not None and best.tid in curves:
        c = curves[best.tid]
        order = np.argsort(c.steps, kind="stable")
        ax.plot(np.asarray(c.steps)[order], np.asarray(c.values, dtype=float)[order], color=_BEST_COLOR,
                linewidth=2, label=f"best trial {best.tid}")
    values = np.concatenate([np.asarray(c.values, dtype=float) for c in curves.values()])
    return _finish_lines(fig, ax, out, values, "step", "intermediate value",
                         _title(snap, f"Learning curves of {len(curves)} trials, {trial_counts(snap)}"))


def _finish_lines(fig: Any, ax: Any, out: str | os.PathLike[str] | None, values: np.ndarray,
                  xlabel: str, ylabel: str, title: str) -> Any:
    """The common end of the history and curves plots: a log y axis when the finite values
    are positive and span more than 30x, labels, grid, legend, saved."""
    finite = values[np.isfinite(values)]
    if len(finite) and finite.min() > 0 and finite.max() / finite.min() > 30:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper right", frameon=False)
    return _save(fig, out)


PLOTS = {"history": plot_history, "params": plot_params, "hist": plot_hist, "curves": plot_curves}


# -- hyperopt's names ----------------------------------------------------------------------
def _shown(fig: Any, do_show: bool) -> Any:
    """hyperopt's ``do_show``: show the figure in a pyplot window (needs a display)."""
    if do_show:
        import matplotlib.pyplot as plt

        manager = plt.figure().canvas.manager  # a pyplot-managed window to draw this figure in
        manager.canvas.figure = fig
        fig.set_canvas(manager.canvas)
        plt.show()
    return fig


def main_plot_history(trials: Any, do_show: bool = True, status_colors: Any = None, title: str = "Loss History") -> Any:
    """hyperopt's name for ``plot_history`` (``status_colors`` and ``title`` are not used)."""
    return _shown(plot_history(trials), do_show)


def main_plot_histogram(trials: Any, do_show: bool = True, title: str = "Loss Histogram") -> Any:
    """hyperopt's name for a histogram of the losses of the successful trials."""
    snap = as_snapshot(trials)
    losses = np.array([float(r.loss) for r in snap.records if _finite(r)])  # type: ignore[arg-type]
    if losses.size == 0:
        raise PlotError(f"study {snap.name or '(unnamed)'} has no trial that finished with a loss yet; nothing to plot")
    fig = _figure(6.0, 4.0)
    ax = fig.add_subplot()
    ax.hist(losses, bins=min(50, max(5, losses.size // 4)), color=_OK_COLOR, alpha=0.8)
    ax.set_xlabel("loss")
    ax.set_ylabel("trials")
    ax.set_title(_title(snap, f"{title}, {losses.size} trials"))
    return _shown(fig, do_show)


def main_plot_vars(trials: Any, do_show: bool = True, fontsize: int = 10, colorize_best: Any = None,
                   columns: int = 5, arrange_by_loss: bool = False) -> Any:
    """hyperopt's name for ``plot_params`` (one panel per parameter: value against trial,
    coloured by loss); the layout arguments are not used."""
    return _shown(plot_params(trials), do_show)
