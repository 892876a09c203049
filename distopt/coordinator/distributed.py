"""Running a study on workers: the objective shipped, one coordinator, the same loop.

``run_distributed`` takes the study's lease (a second coordinator on the same study is
refused), ships the objective (pickled and signed, or as an import path), and drives
the ``Coordinator`` through an ``RQExecutor``, with the ticks that keep the promise that
every trial asked for ends exactly once: the lease renewal, the reaper of lost trials,
the watch for ``distopt cancel``, and a guard that stops a study whose workers cannot
load its objective.

A study that already exists is resumed: its queued and running trials are adopted (their
jobs still wait in rq or run on workers), results that arrived while no coordinator ran
are recorded, and the reaper re-runs what is gone. Ctrl-C leaves the study resumable.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
from typing import Any, Callable, Iterator, Sequence

from .cancel import CancelWatch
from .idle_watch import IdleQueueWatch
from .loop import Coordinator, StopRules, Tick, cancel_leftover
from ..errors import ConnectionFailed, DistoptError, LeaseError, StudyNotFound
from ..trial.names import study_lost
from .interrupts import finishing, stops_once
from .failfast import THRESHOLD as FAIL_FAST, FailureGuard
from .lease import LEASE_TTL, Lease
from ..dispatch.objective import ObjectiveRef, check_import_path, path_ref, pickle_objective
from ..dispatch.secret import resolve_secret
from .reaper import Liveness, Reaper
from ..storage import RedisStorage
from ..study.study import Study
from ..dispatch.versions import check_workers, local_versions
from ..defaults import DEFAULT_QUEUE, MAX_RETRIES, is_limit
from ..trial.liveness import heartbeat_ttl_of

log = logging.getLogger(__name__)

#: Trials in flight when the caller does not say.
DEFAULT_PARALLELISM = 8
#: A worker beats this many times per heartbeat ttl.
BEATS_PER_TTL = 6

__all__ = ["DEFAULT_PARALLELISM", "LEASE_TTL", "Lease", "run_distributed", "ship_objective", "resume_hint",
           "interruption_reported"]

#: Set while a caller reports an interrupted study itself (the CLI prints the exact resume
#: command, or that a private Redis took the study with it): the generic hint is then
#: only logged at INFO, so the user never reads two different, or untrue, instructions.
_CALLER_REPORTS: contextvars.ContextVar[bool] = contextvars.ContextVar("distopt_caller_reports", default=False)


def caller_reports_interruption() -> bool:
    """Whether the caller said it tells the user about an interrupted study itself."""
    return _CALLER_REPORTS.get()


@contextlib.contextmanager
def interruption_reported() -> Iterator[None]:
    """Within this block, an interrupted ``run_distributed`` leaves telling the user how
    to resume (or that it cannot be resumed) to the caller."""
    token = _CALLER_REPORTS.set(True)
    try:
        yield
    finally:
        _CALLER_REPORTS.reset(token)


def ship_objective(
    objective: Callable[[Any], Any] | str, study: Study, storage: RedisStorage, secret: bytes | None,
) -> ObjectiveRef:
    """Store the objective where workers find it (an import path is only checked and
    signed) and name it in the study's meta: workers run only jobs that name an objective
    this study shipped (a resumed study's old jobs keep the objective they were made with)."""
    if isinstance(objective, str):
        path = check_import_path(objective)
        if study.storage.get_study(study.name).get("space") is None:
            raise DistoptError(
                f"objective {path!r} is an import path, so workers rebuild the space from its JSON form, "
                "but this space holds non-JSON constants; pass the objective function itself instead"
            )
        ref = path_ref(path, secret)
    elif not callable(objective):
        raise DistoptError(f"the objective must be a callable or an import path 'package.module:function', "
                           f"got {objective!r}")
    else:
        ref, blob = pickle_objective(objective, study.space, secret=secret)
        assert ref.digest is not None
        storage.put_blob(ref.digest, blob)
    shipped = list(storage.get_study(study.name).get("objectives") or [])
    if ref.key not in shipped:
        shipped.append(ref.key)
    storage.update_study(study.name, {"objective": ref.to_json(), "objectives": shipped})
    return ref


@stops_once  # a second Ctrl-C waits for the study to be left resumable
def run_distributed(
    study: Study,
    objective: Callable[[Any], Any] | str,
    rules: StopRules,
    *,
    queue: str = DEFAULT_QUEUE,
    parallelism: int | None = None,
    secret: str | bytes | None = None,
    insecure: bool = False,
    trial_timeout: float | None = None,
    max_retries: int = MAX_RETRIES,
    show_progressbar: bool = False,
    ticks: Sequence[Tick] = (),
    lease_ttl: float = LEASE_TTL,
    heartbeat_ttl: float | None = None,
    secret_resolved: bool = False,
    fail_fast: int = FAIL_FAST,
    max_consecutive_failures: int | None = None,
    wait_for_lease: bool = True,
) -> str:
    """Run ``study`` on the workers of ``queue`` until a stop rule fires; returns its name.

    ``secret`` defaults to $DISTOPT_SECRET; without one, ``insecure=True`` ships the
    objective unsigned. A trial whose worker goes silent for ``heartbeat_ttl`` seconds
    (default: the study's, else 30) runs again, up to ``max_retries`` times; one running
    past ``trial_timeout`` FAILs. When the first ``fail_fast`` results fail with one error, or
    ``max_consecutive_failures`` fail in a row, the study stops (``failfast``). A study another
    coordinator holds is taken over at once when that one died on this host, else after
    its lease lapses (``wait_for_lease=False``: refused at once). On Ctrl-C
    (or SIGTERM turned into SystemExit) or when
    Redis stays away, pending trials are kept and the study is left "interrupted" for a
    later run to resume; after another error they are cancelled and their queued jobs
    withdrawn; after losing the lease it writes nothing more (the study has a new owner).
    """
    from ..dispatch import RQExecutor  # only the distributed path needs rq

    storage = study.storage
    if not isinstance(storage, RedisStorage):
        raise DistoptError(f"distributed runs need a study on Redis, but this study is on {storage!r}")
    _check_settings(trial_timeout, max_retries, heartbeat_ttl, lease_ttl)
    _check_failure_limits(fail_fast, max_consecutive_failures)
    if isinstance(objective, str):
        check_import_path(objective)
    if secret_resolved:  # the caller already settled it (and warned when insecure)
        key = secret.encode() if isinstance(secret, str) else secret
    else:
        key = resolve_secret(secret, insecure=insecure, role="coordinator")
    lease = Lease(storage, study.name, lease_ttl)
    lease.acquire(wait=wait_for_lease)
    window = storage.retry_window
    try:
        study.reload()  # holding the lease: what another coordinator did until now is seen, and nothing changes it
        before = storage.get_study(study.name)
        ttl = heartbeat_ttl_of(before, heartbeat_ttl)
        ref = ship_objective(objective, study, storage, key)
        if ref.digest is not None:  # a pickle: the workers' Python and cloudpickle must load it
            check_worker_versions(storage, queue)
        storage.update_study(study.name, {
            "queue": queue, "objective": ref.to_json(), "status": "running", "coordinator": lease.owner,
            "max_retries": int(max_retries), "max_evals": rules.max_evals if is_limit(rules.max_evals) else None,
            "heartbeat_ttl": ttl, "trial_timeout": trial_timeout, "cancel_requested": False,
            "signed_results": key is not None,  # a cancel without this coordinator checks results by it
        })
        parallelism = parallelism or DEFAULT_PARALLELISM
        executor = RQExecutor(storage, study.name, ref, queue=queue, trial_timeout=trial_timeout,
                              heartbeat_interval=ttl / BEATS_PER_TTL, heartbeat_ttl=ttl,
                              batch=max(4, parallelism // 4), secret=key, pruner=study.pruner.to_json())
        liveness = Liveness(heartbeat_ttl=ttl, max_retries=max_retries, trial_timeout=trial_timeout)
        reaper = Reaper(executor, liveness)
        guard = FailureGuard(fail_fast, max_consecutive_failures,
                             listening=lambda: set(_listening(storage, queue)))

        def unloadable(study: Study, msg: dict[str, Any]) -> None:
            guard.load_failed(str(msg.get("reason")), msg.get("rq_worker") or msg.get("worker"))
            reaper.reroute(study, msg)

        coordinator = Coordinator(
            study, executor, rules, parallelism=parallelism, show_progressbar=show_progressbar,
            ticks=(lease.tick, reaper, CancelWatch(secret=key), IdleQueueWatch(executor, ttl), *ticks),
            observers=(guard.observe,),
            message_hooks={"handback": reaper.handback, "unloadable": unloadable},
            wait_interval=min(1.0, lease_ttl / 4, liveness.period_s),
        )
        try:
            reason = coordinator.run()
        except LeaseError:
            executor.discard()  # jobs kept for the next round trip belong to a study this one lost
            raise
        except StudyNotFound as exc:  # it was there when this coordinator took its lease
            executor.discard()
            _note_vanished(study)
            raise study_lost(study.name, storage.where, seen_by="while this coordinator ran it") from exc
        except (KeyboardInterrupt, SystemExit, ConnectionFailed) as exc:
            if isinstance(exc, ConnectionFailed):
                storage.retry_window = 0.0  # Redis stayed away a whole window: do not wait another to say so
            else:
                storage.reset_connections()  # the interrupt may have cut a reply short
                _requeue_cut_off(study, executor)
            _keep_for_resume(study)
            exc.distopt_kept = True  # type: ignore[union-attr]
            raise
        except BaseException as exc:
            _withdraw(study, executor, exc)
            raise
        finally:
            executor.close()
        with finishing():
            storage.update_study(study.name, {"status": "cancelled" if reason == "cancelled" else "done",
                                              "stop_reason": reason})
            _drain_inbox(study)
        return reason
    except (KeyboardInterrupt, SystemExit) as exc:  # before the loop ran: the study is left as resumable
        if not getattr(exc, "distopt_kept", False):
            storage.reset_connections()
            _keep_for_resume(study)
        raise
    finally:
        lease.release()
        storage.retry_window = window


def check_worker_versions(storage: RedisStorage, queue: str) -> None:
    """Refuse, before the first trial, to run on listening workers whose Python or
    cloudpickle differs from this process's in major.minor, naming their hosts; warn once
    about patch differences. Workers that start later check the objective when they load it."""
    check_workers(local_versions(), _listening(storage, queue), queue)


def _listening(storage: RedisStorage, queue: str) -> dict[str, Any]:
    """rq name -> published versions of the live workers listening on ``queue``."""
    import time

    from ..dispatch.inspect import listening_versions
    from ..trial.liveness import dead_worker_names

    now = time.time()
    dead = dead_worker_names(storage.worker_records(), now)  # rq keeps killed workers listed for minutes
    return listening_versions(storage.client, queue, now, dead)


def _check_failure_limits(fail_fast: int, max_consecutive_failures: int | None) -> None:
    if isinstance(fail_fast, bool) or not isinstance(fail_fast, int) or fail_fast < 0:
        raise DistoptError(f"fail_fast must be a whole number >= 0 (0 turns it off), got {fail_fast!r}")
    if max_consecutive_failures is not None and (isinstance(max_consecutive_failures, bool) or not isinstance(
            max_consecutive_failures, int) or max_consecutive_failures < 1):
        raise DistoptError(f"max_consecutive_failures must be a whole number >= 1 (or None), "
                           f"got {max_consecutive_failures!r}")


def _drain_inbox(study: Study) -> None:
    """Drop what is left in an ended study's inbox (results of withdrawn or superseded
    attempts): no one would read it, and Redis would keep it forever. Nothing more is
    pushed once the study's status says it ended."""
    dropped = 0
    while True:
        messages = study.storage.pop_results(study.name, timeout=0.0, limit=1000)
        if not messages:
            break
        dropped += len(messages)
    if dropped:
        log.info("dropped %d messages that reached study %r after its trials ended", dropped, study.name)


def _note_vanished(study: Study) -> None:
    """Remember a study Redis lost, so a rerun under its name is told instead of starting afresh."""
    try:
        study.storage.note_vanished(study.name, study.incarnation)
    except Exception:
        log.debug("could not note that study %r vanished", study.name, exc_info=True)


def _check_settings(trial_timeout: float | None, max_retries: int, heartbeat_ttl: float | None,
                    lease_ttl: float) -> None:
    for name, value in (("trial_timeout", trial_timeout), ("heartbeat_ttl", heartbeat_ttl), ("lease_ttl", lease_ttl)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0):
            raise DistoptError(f"{name} must be a positive number of seconds (or None), got {value!r}")
    if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
        raise DistoptError(f"max_retries must be an integer >= 0, got {max_retries!r}")


def resume_hint(study: str) -> str:
    """How to continue an interrupted study, for messages."""
    return (f"resume it with fmin(..., trials=RedisTrials(url, exp_key={study!r})) or "
            f"`distopt run STUDY_FILE --redis URL --study {study}`")


def _keep_for_resume(study: Study) -> None:
    """Ctrl-C or Redis gone: keep pending trials (their jobs stay queued) for a resume."""
    pending = study.n_pending
    try:
        study.storage.update_study(study.name, {"status": "interrupted"})
    except Exception:
        log.debug("could not mark study %r interrupted", study.name, exc_info=True)
    if _CALLER_REPORTS.get():
        log.info("study %r interrupted with %d trials finished and %d queued or running",
                 study.name, study.n_finished, pending)
        return
    log.warning("study %r interrupted with %d trials finished and %d queued or running, kept in Redis; %s",
                study.name, study.n_finished, pending, resume_hint(study.name))


def _requeue_cut_off(study: Study, executor: Any) -> None:
    """Ctrl-C: the queued trials keep a job each, so workers finish them for a resume."""
    try:
        executor.requeue_missing(study)
    except Exception:  # the reaper of the next run re-runs them
        log.warning("could not check the jobs of the queued trials of study %r", study.name, exc_info=True)


def _withdraw(study: Study, executor: Any, exc: BaseException) -> None:
    """Cancel what is still pending after a failure, without hiding that failure."""
    try:
        cancel_leftover(study, executor)
        study.storage.update_study(study.name, {"status": "failed", "error": f"{type(exc).__name__}: {exc}"})
    except Exception:
        log.warning("could not cancel the pending trials of study %r", study.name, exc_info=True)
