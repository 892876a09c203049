"""Stop a study that cannot succeed, instead of burning its budget.

Three rules, each a coordinator observer of the results it records:

- the first ``fail_fast`` results of a run all failed with the same error (the objective
  raised, or returned something that is not a result): a bug, or a missing file, that
  every trial will hit. Any other outcome first disarms the rule for the run;
- ``max_consecutive_failures`` failed trials in a row, at any time (off by default);
- workers could not even load the objective (a module missing, another Python or
  cloudpickle minor version, a signature that does not verify). Such a trial was never
  evaluated: it runs again, elsewhere, without using the budget or a retry. The study
  stops with the error only when every worker listening has failed to load it and
  ``fail_fast`` load failures came in a row before any trial ran (or
  ``LOAD_FAILURES_AFTER_SUCCESS`` after one did): one machine without a package then
  costs nothing but a detour, a cluster without it stops at once.
"""

from __future__ import annotations

from typing import Any, Callable

from ..errors import ObjectiveError
from ..trial.record import TrialRecord

#: Default for fail_fast: results failing the same way, from the start, that stop the study.
THRESHOLD = 5
#: Load failures in a row, after some trial ran, that stop the study all the same.
LOAD_FAILURES_AFTER_SUCCESS = 50


def first_line(text: str | None) -> str:
    return (text or "").strip().splitlines()[0] if (text or "").strip() else ""


class FailureGuard:
    """Raises ``ObjectiveError`` when a rule of the module docstring says the study
    cannot succeed. ``fail_fast=0`` turns the first rule off."""

    def __init__(self, fail_fast: int = THRESHOLD, max_consecutive_failures: int | None = None,
                 listening: Callable[[], set[str]] | None = None) -> None:
        self.fail_fast = fail_fast
        self.listening = listening or set
        self.max_consecutive_failures = max_consecutive_failures
        self._first_error: str | None = None
        self._same = 0
        self._armed = fail_fast > 0
        self._in_a_row = 0
        self._ran = False
        self._load_reasons: dict[str, int] = {}
        self._loads_in_a_row = 0
        self._cannot_load: set[str] = set()

    # -- evaluated results ---------------------------------------------------------------
    def observe(self, msg: dict[str, Any], rec: TrialRecord) -> None:
        if msg.get("error_kind") == "objective":  # a result from a worker of an older version
            self.load_failed(str(msg.get("reason") or msg.get("error")), msg.get("worker"))
            return
        self._ran = True
        self.loaded()
        failed = msg.get("status") != "ok"
        self._in_a_row = self._in_a_row + 1 if failed else 0
        if self._armed:
            key = self._error_key(msg) if failed and not msg.get("reported") else None
            if key is None or (self._first_error is not None and key != self._first_error):
                self._armed = False
            else:
                self._first_error = key
                self._same += 1
                if self._same >= self.fail_fast:
                    raise ObjectiveError(
                        f"the first {self._same} trials all failed with the same error, so the study stops "
                        f"instead of spending its budget on it (fail_fast={self.fail_fast}): "
                        f"{first_line(msg.get('error'))}{self._where(msg)}"
                    )
        limit = self.max_consecutive_failures
        if limit and self._in_a_row >= limit:
            raise ObjectiveError(
                f"{self._in_a_row} trials in a row failed (max_consecutive_failures={limit}), so the study "
                f"stops; the last one: {first_line(msg.get('error')) or 'failed'}{self._where(msg)}"
            )

    @staticmethod
    def _error_key(msg: dict[str, Any]) -> str:
        """What makes two errors the same: the exception type and the line that raised it
        (the message may hold the trial's values), else the error's first line."""
        error = first_line(msg.get("error"))
        frames = [line.strip() for line in (msg.get("traceback") or "").splitlines() if line.strip().startswith('File "')]
        return f"{error.partition(':')[0]} {frames[-1]}" if frames else error

    @staticmethod
    def _where(msg: dict[str, Any]) -> str:
        """Where the user's code raised, from the last 'File "...", line N' of the traceback."""
        tb = msg.get("traceback") or ""
        frames = [line.strip() for line in tb.splitlines() if line.strip().startswith('File "')]
        return f" (at {frames[-1]})" if frames else ""

    # -- trials that never ran -----------------------------------------------------------
    def load_failed(self, reason: str, worker: str | None = None) -> None:
        """Worker ``worker`` (its rq name) could not load the objective; raise when no
        listening worker can and the failures in a row reached the limit."""
        self._loads_in_a_row += 1
        self._load_reasons[reason] = self._load_reasons.get(reason, 0) + 1
        if worker:
            self._cannot_load.add(worker)
        limit = LOAD_FAILURES_AFTER_SUCCESS if self._ran or not self.fail_fast else self.fail_fast
        if self._loads_in_a_row < limit:
            return
        others = set(self.listening()) - self._cannot_load
        if others:
            return  # they may load it: the trials go to them
        if not self._ran and len(self._load_reasons) == 1:
            raise ObjectiveError(
                f"the first {self._loads_in_a_row} trials all failed on the workers before the objective "
                f"ran, with the same error, so the study stops instead of spending its budget on it: {reason}"
            )
        reasons = "; ".join(sorted(self._load_reasons, key=self._load_reasons.__getitem__, reverse=True)[:3])
        raise ObjectiveError(
            f"no listening worker could load the objective ({self._loads_in_a_row} tries in a row, from "
            f"{len(self._cannot_load)} worker(s)), so the study stops: {reasons}"
        )

    def loaded(self) -> None:
        """Some worker evaluated a trial: load failures in a row start again from zero."""
        self._loads_in_a_row = 0
        self._load_reasons.clear()


#: The name earlier code used; the load-failure rule is one of FailureGuard's.
LoadFailureGuard = FailureGuard
