"""``report``/``should_prune``: intermediate values from inside an objective.

The objective keeps its signature: the trial it runs for is set in a context variable by
whoever calls it (the in-process executor, a worker), so ``report(step, value)`` knows
where to record the value and which pruner decides. One report is one storage call: the
value goes in and every trial's curve comes back in the same round trip, and the decision
is taken here, never waiting for the coordinator.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import warnings
from typing import Any, Callable, Iterator

from ..errors import TrialPruned
from ..pruners import Curve, NopPruner, Pruner, Snapshot

log = logging.getLogger(__name__)


class Reporter:
    """Where one trial attempt's reports go and how they are judged: ``storage`` is any
    ``distopt.storage.Storage`` (only its ``report`` is called).

    ``call`` wraps the storage call (a worker retries it through a Redis restart); the
    report is idempotent per (attempt, step), so a retry never counts a value twice.
    """

    def __init__(self, storage: Any, study: str, tid: int, attempt: int, pruner: Pruner | None = None,
                 call: Callable[..., Any] | None = None) -> None:
        self.storage = storage
        self.study = study
        self.tid = int(tid)
        self.attempt = int(attempt)
        self.pruner = pruner if pruner is not None else NopPruner()
        self._call = call or (lambda fn, *args, **kw: fn(*args, **kw))
        self.last_step: int | None = None
        self.last_value: float | None = None
        self.pruned = False
        self.n_reports = 0
        #: each trial's curve as last built, with the stored curve it was built from: a
        #: storage hands back the same object for a curve that did not change, so a report
        #: rebuilds only the curves that did (thousands of trials: most of a report's cost)
        self._built: dict[int, tuple[Any, Curve]] = {}

    def report(self, step: int, value: float) -> bool:
        """Record the value; True when the pruner says stop."""
        want = not isinstance(self.pruner, NopPruner)
        reply = self._call(self.storage.report, self.study, self.tid, self.attempt, step, value, want)
        self.n_reports += 1
        if self.last_step is None or int(step) >= self.last_step:
            self.last_step, self.last_value = int(step), float(value)
        if want and reply.curves is not None and self.tid in reply.curves \
                and reply.curves[self.tid].attempt == self.attempt:
            curves = self._curves(reply.curves)
            self.pruned = bool(self.pruner.prune(Snapshot(self.tid, curves, reply.n_complete, self.study)))
        return self.pruned

    def _curves(self, stored: dict[int, Any]) -> dict[int, Curve]:
        """The pruner's curves from the storage's (this trial's only for this attempt)."""
        built: dict[int, tuple[Any, Curve]] = {}
        for t, c in stored.items():
            if t == self.tid and c.attempt != self.attempt:
                continue
            hit = self._built.get(t)
            built[t] = hit if hit is not None and hit[0] is c else (c, Curve.of(c.steps, c.values, c.complete))
        self._built = built
        return {t: curve for t, (_, curve) in built.items()}


_current: contextvars.ContextVar[Reporter | None] = contextvars.ContextVar("distopt_reporter", default=None)
_warned = False


@contextlib.contextmanager
def reporting(reporter: Reporter | None) -> Iterator[Reporter | None]:
    """Make ``reporter`` the target of ``report`` while the objective runs."""
    token = _current.set(reporter)
    try:
        yield reporter
    finally:
        _current.reset(token)


def current() -> Reporter | None:
    return _current.get()


def _outside(what: str) -> None:
    global _warned
    if not _warned:
        _warned = True
        warnings.warn(f"distopt.{what} was called outside a trial (no objective is running under fmin, a Study "
                      "or a worker); it does nothing there", RuntimeWarning, stacklevel=3)


def report(step: int, value: float, *, raise_pruned: bool = True) -> bool:
    """Record ``value`` (lower is better) at ``step`` (an epoch, a boosting round) for the
    running trial, and raise ``TrialPruned`` when the study's pruner stops it (with
    ``raise_pruned=False``, return True instead, so the objective can clean up first and
    then raise ``TrialPruned`` itself). A step reported twice keeps its first value.
    Outside a trial: does nothing (one warning)."""
    reporter = _current.get()
    if reporter is None:
        _outside("report")
        return False
    if reporter.report(step, value) and raise_pruned:
        raise TrialPruned(f"trial {reporter.tid} pruned at step {step} (value {float(value):.6g}) "
                          f"by {reporter.pruner!r}")
    return reporter.pruned


def should_prune() -> bool:
    """Whether the pruner decided, at the last ``report``, to stop the running trial."""
    reporter = _current.get()
    if reporter is None:
        _outside("should_prune")
        return False
    return reporter.pruned
