"""``--save FILE``: every trial of a run written when it ends (CSV or JSON, as ``distopt
trials`` exports them), however it ends; checked before the run so a bad path fails first."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from typing import Any, Iterator

from ..errors import DistoptError
from ..trial.record import TrialState

log = logging.getLogger(__name__)


def finished_and_pending(study: Any) -> tuple[int, int]:
    """Finished (OK or FAIL) and pending (QUEUED, RUNNING or LOST, which runs again) trials,
    read from the same records ``--save`` writes, so the message and the file never disagree."""
    states = [record.state for record in study.trials]
    finished = sum(state in (TrialState.OK, TrialState.FAIL) for state in states)
    pending = sum(state in (TrialState.QUEUED, TrialState.RUNNING, TrialState.LOST) for state in states)
    return finished, pending


def check_save_path(save: str | None) -> None:
    """Fail before the run, not after it, when the file for ``save`` cannot be written."""
    if save is None:
        return
    folder = os.path.dirname(os.path.abspath(save))
    if os.path.isdir(save) or not os.path.isdir(folder) or not os.access(folder, os.W_OK):
        raise DistoptError(f"cannot write the trials to {save!r}: {folder} is not a writable folder "
                           "(or the path is a folder); choose another --save FILE")


@contextlib.contextmanager
def saved(trials: Any, save: str | None) -> Iterator[None]:
    """Write every trial of ``trials`` to ``save`` when the block ends, however it ends;
    a failed write after a failed run is logged, so the run's own error stays the one raised."""
    try:
        yield
    finally:
        study = trials.study
        if save is not None and study is not None:
            failing = sys.exc_info()[0] is not None
            try:
                n = write_trials(study, save)
                log.info("wrote %d trials to %s", n, save)
                note = getattr(sys.exc_info()[1], "run_interruption", None)
                if note is not None:  # count what was written, after any result recorded since
                    note.n_finished, note.n_pending = finished_and_pending(study)
            except (OSError, DistoptError) as exc:
                if not failing:
                    raise DistoptError(f"cannot write the trials to {save!r}: {exc}") from exc
                log.error("cannot write the trials to %s: %s", save, exc)


def write_trials(study: Any, path: str) -> int:
    """Every trial of ``study`` as ``distopt trials`` exports it: CSV for a ``.csv`` path,
    else JSON; the number written."""
    from ..study.rows import atomic_write, choice_options, trials_rows, write_rows

    labels = list(study.compiled.labels)
    fmt = "csv" if path.lower().endswith(".csv") else "json"
    rows = trials_rows(study.trials, labels, choices=choice_options(study.space), curves=study.curves(),
                       intermediate=fmt == "json")
    with atomic_write(path) as fh:
        write_rows(rows, fh, fmt, labels)
    return len(rows)
