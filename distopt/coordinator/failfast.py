"""Stop a study whose workers cannot even load its objective, instead of burning its budget.

A worker that cannot load the objective (a module missing on that machine, another
Python or cloudpickle version, a signature that does not verify) reports that on the
trial and stays up. When the first several results of a run all report the same such
error, no trial will ever succeed: the coordinator stops with that error.
"""

from __future__ import annotations

from typing import Any

from ..errors import ObjectiveError
from ..trial.record import TrialRecord

#: Results failing the same way, before any other result, that stop the study.
THRESHOLD = 5


class LoadFailureGuard:
    """A coordinator observer: raises ``ObjectiveError`` on the ``threshold``-th result in
    a row, from the start of the run, that failed to load the objective with one error."""

    def __init__(self, threshold: int = THRESHOLD) -> None:
        self.threshold = threshold
        self._reason: str | None = None
        self._count = 0
        self._armed = True

    def observe(self, msg: dict[str, Any], rec: TrialRecord) -> None:
        if not self._armed:
            return
        if msg.get("error_kind") != "objective":
            self._armed = False  # the objective ran somewhere: failures are the objective's own
            return
        reason = str(msg.get("reason") or msg.get("error"))
        if self._reason is None:
            self._reason = reason
        elif reason != self._reason:
            self._armed = False
            return
        self._count += 1
        if self._count >= self.threshold:
            raise ObjectiveError(
                f"the first {self._count} trials all failed on the workers before the objective ran, with "
                f"the same error, so the study stops instead of spending its budget on it: {self._reason}"
            )
