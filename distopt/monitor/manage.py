"""Study management behind ``distopt studies`` and ``distopt delete``: list the studies on
a Redis with their status, counts, best loss and age, and delete one study entirely.

Deleting refuses a study whose coordinator is alive (it holds the lease) unless forced;
it removes every key of that study (record, trials, inbox, heartbeats, lease) and the
jobs it still has waiting on its rq queue, and nothing of any other study.
"""

from __future__ import annotations

import time
from typing import Any

from ..errors import StudyRunning
from .document import ACTIVE_STATUSES, collect
from ..storage import RedisStorage, open_storage


def list_studies(target: Any, *, active: bool = False, now: float | None = None) -> list[dict[str, Any]]:
    """One summary per study, active ones (running, interrupted, created) first, each
    group most recently active first: ``name``, ``status`` (as ``distopt.status`` says it:
    a study whose coordinator is gone is ``interrupted``), ``coordinator_alive``,
    ``counts``, ``total``, ``finished``, ``max_evals``, ``best_loss``, ``created``,
    ``last_activity`` and ``age`` (seconds since ``last_activity``). ``active`` keeps only
    the active ones."""
    storage = open_storage(target)
    try:
        when = time.time() if now is None else float(now)
        doc = collect(storage, None, now=when)
    finally:
        if storage is not target:
            storage.close()
    rows = []
    for name, st in doc["studies"].items():
        if active and st["status"] not in ACTIVE_STATUSES:
            continue
        rows.append({
            "name": name, "status": st["status"], "coordinator_alive": st["coordinator_alive"],
            "counts": st["counts"], "total": st["total"], "finished": st["finished"], "max_evals": st["max_evals"],
            "best_loss": None if st["best"] is None else st["best"]["loss"], "created": st["created"],
            "last_activity": st["last_activity"], "age": max(0.0, when - (st["last_activity"] or when)),
        })
    return rows


def delete_study(target: Any, name: str, *, force: bool = False) -> dict[str, Any]:
    """Delete study ``name``: every key it owns and its jobs still waiting on its queue.
    Raises ``StudyNotFound`` (naming the studies that exist), or ``StudyRunning`` when a
    live coordinator holds it and ``force`` is not given. Returns what was removed:
    ``{"study", "trials", "jobs_withdrawn", "coordinator"}``."""
    storage = open_storage(target)
    try:
        meta = storage.get_study(name)
        owner = storage.lease_owner(name)
        if owner is not None and not force:
            raise StudyRunning(
                f"study {name!r} is being run by coordinator {owner} (it holds the study's lease); stop that run "
                f"first (Ctrl-C, or `distopt cancel --study {name}`), or pass --force (force=True) to delete it "
                "anyway, which makes that coordinator fail"
            )
        trials = sum(storage.count_states(name).values())
        withdrawn = _withdraw_jobs(storage, name, meta.get("queue"))
        storage.delete_study(name)
        return {"study": name, "trials": trials, "jobs_withdrawn": withdrawn, "coordinator": owner}
    finally:
        if storage is not target:
            storage.close()


def _withdraw_jobs(storage: Any, name: str, queue: Any) -> int:
    """Remove the study's jobs still waiting on its rq queue (a worker would only find
    the study gone)."""
    if not isinstance(storage, RedisStorage) or not isinstance(queue, str):
        return 0
    from ..dispatch.rq_executor import withdraw_study_jobs

    return withdraw_study_jobs(storage.client, queue, name)
