"""Executors run trials somewhere and hand result messages back to the coordinator.

``InlineExecutor`` evaluates in the coordinator's own process, one trial at a time, as
hyperopt's ``fmin`` does. The RQ executor (``dispatch``) runs them on workers. Both
speak the same messages (see ``evaluation.py``), so the coordinator loop is the same.
"""

from __future__ import annotations

import collections
from typing import Any, Callable, Protocol, Sequence

from ..errors import TrialPruned
from ..trial.outcome import INVALID_KINDS, evaluate
from ..trial.reporting import Reporter


class Executor(Protocol):
    """What the coordinator needs from a place that runs trials."""

    def submit(self, study: Any, trials: Sequence[Any]) -> None:
        """Start evaluating ``trials`` (``Trial`` objects of ``study``)."""

    def wait(self, timeout: float) -> list[dict[str, Any]]:
        """Messages that arrived (results, ``{"type": "started", ...}``), waiting at most
        ``timeout`` seconds for the first one."""

    def cancel(self, study: Any, tids: Sequence[int]) -> Sequence[int] | None:
        """Withdraw trials that have not started, best effort (the tids withdrawn, when known)."""

    def close(self) -> None:
        ...


class InlineExecutor:
    """Evaluate trials sequentially in this process.

    With ``reraise`` (hyperopt's default, ``catch_eval_exceptions=False``) an exception in
    the objective, or a return value that is no result (None, a string, a bad status), is
    recorded as a failed trial and then raised from ``fmin``, on the first trial, as
    hyperopt does. Messages keep the returned dict itself (``raw_result``) for the
    hyperopt-style documents; the storage keeps its JSON-able form.
    """

    def __init__(self, fn: Callable[[Any], Any], reraise: bool = False) -> None:
        self.fn = fn
        self.reraise = reraise
        self._queue: collections.deque = collections.deque()

    def submit(self, study: Any, trials: Sequence[Any]) -> None:
        self._queue.extend((study, t) for t in trials)

    def wait(self, timeout: float) -> list[dict[str, Any]]:
        if not self._queue:
            return []
        study, trial = self._queue.popleft()
        exc: BaseException | None = None

        def call(params: Any) -> Any:
            nonlocal exc
            try:
                return self.fn(params)
            except TrialPruned:
                raise
            except Exception as e:
                exc = e
                raise

        reporter = None if study is None else Reporter(study.storage, study.name, trial.tid, trial.attempt,
                                                       study.pruner)
        msg = evaluate(call, trial.params, tid=trial.tid, attempt=trial.attempt, worker="inline", keep_raw=True,
                       reporter=reporter)
        if self.reraise:  # local only: the coordinator records the FAIL, then raises
            if exc is not None:
                msg["raise"] = exc
            elif msg.get("invalid"):
                msg["raise"] = INVALID_KINDS[msg["invalid"]](
                    f"trial {trial.tid}: {msg['error']} (or pass catch_eval_exceptions=True to record such "
                    "trials as failed and go on)")
        return [msg]

    def cancel(self, study: Any, tids: Sequence[int]) -> None:
        drop = set(tids)
        self._queue = collections.deque((s, t) for s, t in self._queue if t.tid not in drop)

    def close(self) -> None:
        self._queue.clear()
