"""The coordinator loop: keep ``parallelism`` trials in flight until a stop rule fires.

It is the same loop for the in-process executor and for workers on many machines: ask
the study for as many suggestions as there are free slots (pending trials are visible
to the sampler), submit them, wait for messages, record them, check the stop rules.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
import time
from typing import Any, Callable, Mapping

from .inline import Executor
from ..trial.record import TrialRecord, result_fields
from ..study.study import Study
from ..defaults import NO_LIMIT, is_limit

log = logging.getLogger(__name__)

#: Hooks the distributed layer plugs in: called every loop turn with the clock. A tick
#: that returns a string stops the study with that reason (e.g. "cancelled").
Tick = Callable[[Study, float], "str | None"]


class Interval:
    """When a tick is due: at most once per ``seconds`` of the clock the coordinator
    passes (injected in tests), the first call always."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._last: float | None = None

    def due(self, now: float) -> bool:
        if self._last is not None and now - self._last < self.seconds:
            return False
        self._last = now
        return True

    def restart(self, now: float) -> None:
        """Count the next period from ``now`` (the work was just done another way)."""
        self._last = now


def cancel_leftover(study: Study, executor: Executor) -> list[int]:
    """Cancel the study's queued, running and lost trials and withdraw their jobs, as a run
    does when it stops (or fails): the records first, since their writes are fenced and
    withdrawing jobs is not. The tids cancelled."""
    leftover = study.pending_tids() + study.lost_tids()
    cancelled = [rec.tid for rec in study.cancel(leftover)] if leftover else []
    if cancelled:
        executor.cancel(study, cancelled)
    return cancelled


#: Called with each result message and the record it produced (fail-fast checks).
Observer = Callable[[dict[str, Any], TrialRecord], None]
#: Handles messages of one ``type`` other than results and "started" (e.g. "handback").
MessageHook = Callable[[Study, dict[str, Any]], None]


@dataclasses.dataclass
class StopRules:
    """hyperopt's stop rules: ``max_evals`` finished trials, a wall-clock ``timeout``, a
    ``loss_threshold`` reached, or ``early_stop_fn(trials, *args) -> (stop, args)``."""

    max_evals: int = NO_LIMIT
    timeout: float | None = None
    loss_threshold: float | None = None
    early_stop_fn: Callable[..., Any] | None = None
    early_stop_view: Any = None  # what early_stop_fn receives (a hyperopt-style Trials)
    early_stop_args: list = dataclasses.field(default_factory=list)


class Progress:
    """A tqdm bar of finished/total with the best loss and the number in flight. It
    redraws at most every ``TTY_INTERVAL`` seconds on a terminal and every
    ``FILE_INTERVAL`` seconds when stderr is a file or a pipe (a log), not per trial."""

    TTY_INTERVAL = 0.1
    FILE_INTERVAL = 10.0

    def __init__(self, enabled: Any, total: int, initial: int, clock: Callable[[], float] = time.monotonic) -> None:
        """``enabled``: True, False, or a hyperopt progress callback (``callback(initial,
        total)`` is a context manager yielding an object with ``update(n)`` and ``postfix``,
        e.g. ``distopt.progress.no_progress_callback``)."""
        self.bar = None
        self.clock = clock
        self._callback = None
        if callable(enabled):
            self._callback = enabled(initial=initial, total=total if is_limit(total) else None)
            self._ctx = self._callback.__enter__()
            self._done = initial
        elif enabled:
            from tqdm.auto import tqdm

            total_arg = total if is_limit(total) else None
            self.interval = self.TTY_INTERVAL if _is_tty(sys.stderr) else self.FILE_INTERVAL
            self.bar = tqdm(total=total_arg, initial=initial, dynamic_ncols=True, unit="trial", file=sys.stderr,
                            mininterval=self.interval)
            self._redraw = Interval(self.interval)
            self._redraw.restart(clock())  # tqdm drew it just now

    def update(self, done: int, best: float | None, in_flight: int) -> None:
        if self._callback is not None:
            self._ctx.postfix = f"best loss: {'?' if best is None else f'{best:.6g}'}"
            if done > self._done:
                self._ctx.update(done - self._done)
                self._done = done
            return
        if self.bar is None:
            return
        self.bar.n = done
        best_text = "?" if best is None else f"{best:.6g}"
        self.bar.set_postfix_str(f"best loss: {best_text}, in flight: {in_flight}", refresh=False)
        if self._redraw.due(self.clock()):
            self.bar.refresh()

    def close(self) -> None:
        if self._callback is not None:
            callback, self._callback = self._callback, None
            callback.__exit__(None, None, None)
        if self.bar is not None:
            self.bar.close()  # draws the final state


def _is_tty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


class Coordinator:
    """Drives ``study`` through ``executor`` under ``rules``."""

    def __init__(
        self,
        study: Study,
        executor: Executor,
        rules: StopRules,
        parallelism: int = 1,
        show_progressbar: Any = False,
        ticks: tuple[Tick, ...] = (),
        wait_interval: float = 1.0,
        clock: Callable[[], float] = time.time,
        observers: tuple[Observer, ...] = (),
        message_hooks: Mapping[str, MessageHook] | None = None,
    ) -> None:
        if parallelism < 1:
            from ..errors import DistoptError

            raise DistoptError(f"parallelism must be >= 1, got {parallelism!r}")
        self.study = study
        self.executor = executor
        self.rules = rules
        self.parallelism = parallelism
        self.show_progressbar = show_progressbar
        self.ticks = ticks
        self.wait_interval = wait_interval
        self.clock = clock
        self.observers = observers
        self.message_hooks = dict(message_hooks or {})
        self.stop_reason: str | None = None
        self._early_stopped = False

    # -- stop rules ------------------------------------------------------------------
    def check_stop(self, started: float) -> str | None:
        rules, study = self.rules, self.study
        if study.n_finished >= rules.max_evals:
            return "max_evals"
        if rules.timeout is not None and self.clock() - started >= rules.timeout:
            return "timeout"
        best = study.best_trial
        if rules.loss_threshold is not None and best is not None and best.loss is not None \
                and best.loss < rules.loss_threshold:
            return "loss_threshold"
        if self._early_stopped:
            return "early_stop_fn"
        return None

    def _after_result(self) -> None:
        rules = self.rules
        if rules.early_stop_fn is None:
            return
        stop, args = rules.early_stop_fn(rules.early_stop_view, *rules.early_stop_args)
        rules.early_stop_args = list(args) if args is not None else []
        if stop:
            log.info("early stop triggered")
            self._early_stopped = True

    # -- messages --------------------------------------------------------------------
    def _admitted(self, msg: dict[str, Any]) -> bool:
        """Whether a message may touch the study: one from another incarnation of the study
        or about other parameters than its trial's is dropped with a log line."""
        try:
            why = self.study.foreign(msg)
        except (KeyError, TypeError, ValueError):
            why = "it is malformed"
        if why is None:
            return True
        log.warning("dropped a message for trial %s attempt %s: %s", msg.get("tid"), msg.get("attempt"), why)
        return False

    def handle(self, msg: dict[str, Any]) -> bool:
        """Record one message; True when it finished a trial."""
        if not self._admitted(msg):
            return False
        kind = msg.get("type")
        if kind == "started":
            self.study.mark_running(int(msg["tid"]), int(msg.get("attempt", 0)), msg.get("worker"),
                                    msg.get("start_time"))
            return False
        if kind is not None:
            hook = self.message_hooks.get(kind)
            if hook is None:
                log.warning("ignored a message of unknown type %r: %r", kind, msg)
            else:
                hook(self.study, msg)
            return False
        return self.handle_many([msg], after=False) == 1

    def handle_many(self, msgs: list[dict[str, Any]], after: bool = True) -> int:
        """Record a batch of messages, the results in one storage round trip where the
        storage can; returns how many trials they finished. With ``after``,
        ``early_stop_fn`` runs after each finished trial, as it would one at a time.

        A result from an earlier attempt than the trial's current one (its worker was
        presumed lost, and came back) is recorded when the trial has not ended, and the
        newer attempt's job is withdrawn; duplicates and results for ended trials are
        dropped with a log line."""
        results = []
        for msg in msgs:
            if msg.get("type") is not None:
                self.handle(msg)
            elif self._admitted(msg):
                results.append(msg)
        finished = 0
        superseded = []
        for msg, rec in zip(results, self.study.record_results([result_fields(m) for m in results])):
            if rec is None:
                log.info("ignored a result for trial %s attempt %s: the trial already ended or is unknown",
                         msg.get("tid"), msg.get("attempt"))
                continue
            if msg.get("attempt") is not None and int(msg["attempt"]) != rec.attempt:
                log.info("trial %s: recorded the late result of attempt %s; withdrawing attempt %s",
                         rec.tid, msg["attempt"], rec.attempt)
                superseded.append(rec.tid)
            for observe in self.observers:
                observe(msg, rec)
            if isinstance(msg.get("raise"), BaseException):  # an inline trial's own error, never a stored message
                raise msg["raise"]
            finished += 1
            if after:
                self._after_result()
        if superseded:
            self.executor.cancel(self.study, superseded)
        return finished

    # -- the loop --------------------------------------------------------------------
    def fill(self) -> None:
        """Ask for as many trials as there are free slots and budget left."""
        study = self.study
        budget = self.rules.max_evals - study.n_finished - study.n_pending - study.n_lost
        k = min(self.parallelism - study.n_pending, budget)
        if k > 0:
            # an executor that can sends the jobs together with its next wait's pop
            submit = getattr(self.executor, "submit_later", None) or self.executor.submit
            submit(study, study.ask(k))

    def run(self) -> str:
        """Run until a stop rule fires; returns its name. Unfinished trials are cancelled."""
        study = self.study
        started = self.clock()
        progress = Progress(self.show_progressbar, self.rules.max_evals, study.n_finished)
        try:
            while True:
                reason = self.check_stop(started)
                if reason is not None:
                    self.stop_reason = reason
                    break
                self.fill()
                wait = self.wait_interval
                if self.rules.timeout is not None:
                    wait = max(0.0, min(wait, self.rules.timeout - (self.clock() - started)))
                self.handle_many(self.executor.wait(wait))
                now = self.clock()
                for tick in self.ticks:
                    reason = tick(study, now)
                    if reason is not None and self.stop_reason is None:
                        self.stop_reason = reason
                if self.stop_reason is not None:
                    break
                best = study.best_trial
                progress.update(study.n_finished, None if best is None else best.loss, study.n_pending)
        finally:
            progress.close()
        cancel_leftover(study, self.executor)
        return self.stop_reason
