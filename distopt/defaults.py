"""Every default and every environment variable distopt reads, named once.

Modules import these instead of writing the number or the name again, and the CLI help is
formatted from them, so a default changes in one place.
"""

from __future__ import annotations

import numbers
import sys

#: distopt's version (``distopt --version``, published by workers with their Python and
#: cloudpickle versions).
VERSION = "0.1.0"

# ---- queues, studies, keys ------------------------------------------------------------
#: The rq queue trials go to and workers listen on when none is named.
DEFAULT_QUEUE = "distopt"
#: The prefix of every Redis key distopt writes (``storage/redis/keys.py`` spells the keys).
DEFAULT_PREFIX = "distopt:"

# ---- liveness ------------------------------------------------------------------------
#: Seconds between heartbeats of a running trial.
HEARTBEAT_INTERVAL = 5.0
#: A running trial whose last heartbeat (or start) is older than this is presumed lost;
#: also the liveness allowed to a trial that has not beaten yet when its study does not say.
HEARTBEAT_TTL = 30.0
#: Seconds between a worker process's own beats (``$DISTOPT_WORKER_HEARTBEAT`` overrides it).
WORKER_HEARTBEAT = 5.0
#: A worker whose last own beat is older than this many intervals is dead.
DEAD_AFTER_INTERVALS = 1.75
#: A dead worker is no longer listed after this many intervals (at least ``MIN_DROP`` seconds).
DROP_AFTER_INTERVALS = 12
MIN_DROP = 10.0
#: Retries of a lost trial (worker died, job vanished) before it FAILs.
MAX_RETRIES = 2
#: Seconds a coordinator's lease lasts without renewal (a crashed coordinator's study can be
#: taken over after this long).
LEASE_TTL = 30.0
#: Seconds ``distopt cancel`` (``cancel_study``) waits for a running coordinator to stop.
CANCEL_WAIT = 30.0

# ---- limits ----------------------------------------------------------------------------
#: "No limit" for ``max_evals`` and friends: hyperopt's spelling, kept so that its callers
#: work; shown as null/absent wherever a limit is reported.
NO_LIMIT = sys.maxsize


def max_evals_count(value: object) -> int | None:
    """The one ``max_evals`` rule: a whole number >= 0 (an integral float such as ``1e3``
    counts) is that many trials; None or infinity is no limit (None). Anything else raises
    ValueError; callers word the message for where the value came from."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"max_evals must be a whole number >= 0, got {value!r}")
    if isinstance(value, numbers.Integral) and value >= 0:
        return int(value)
    number = float(value)
    if number == float("inf"):
        return None
    if number >= 0 and number.is_integer():
        return int(number)
    raise ValueError(f"max_evals must be a whole number >= 0, got {value!r}")


def is_limit(value: object) -> bool:
    """Whether ``value`` is an actual limit (not None, not ``NO_LIMIT`` or above)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value < NO_LIMIT


#: Largest result message (bytes of JSON) a worker sends; a bigger one FAILs its trial
#: naming both sizes instead of filling Redis. Set on the coordinator (ENV_MAX_RESULT_BYTES),
#: which puts it in each job.
MAX_RESULT_BYTES = 4 * 1024 * 1024
#: Seconds a job a worker refused stays in rq's failed registry (rq's own failure ttl).
REFUSED_JOB_TTL = 7 * 24 * 3600

# ---- workers ---------------------------------------------------------------------------
#: Seconds rq keeps an idle worker registered without a heartbeat; an idle worker beats
#: every ``WORKER_TTL - 15`` s (rq's 420 would let a hung worker look alive for 7 minutes).
WORKER_TTL = 60
#: Seconds a worker pauses after failing to load an objective, doubling with each such
#: failure in a row up to ``LOAD_FAILURE_PAUSE``: a worker that cannot load an objective
#: leaves its trials to workers that can instead of taking each one first.
LOAD_FAILURE_FIRST_PAUSE = 0.2
LOAD_FAILURE_PAUSE = 5.0


# ---- environment variables -------------------------------------------------------------
#: The shared secret that signs objectives and job payloads (never on a command line).
ENV_SECRET = "DISTOPT_SECRET"
#: Set to 1 to run without a secret (trusted, private Redis only).
ENV_INSECURE = "DISTOPT_INSECURE"
#: The Redis URL the CLI uses when ``--redis`` is not given.
ENV_REDIS_URL = "DISTOPT_REDIS_URL"
#: The queue ``distopt run`` and ``distopt worker`` use when --queue is not given.
ENV_QUEUE = "DISTOPT_QUEUE"
#: Worker processes of ``distopt worker`` when --processes is not given.
ENV_PROCESSES = "DISTOPT_PROCESSES"
#: Path of the redis-server binary the embedded mode starts.
ENV_REDIS_SERVER = "DISTOPT_REDIS_SERVER"
#: Seconds between a worker process's own liveness beats.
ENV_WORKER_HEARTBEAT = "DISTOPT_WORKER_HEARTBEAT"
#: The pid of the process that started a local worker (the worker stops when it is gone).
ENV_PARENT_PID = "DISTOPT_PARENT_PID"
#: Largest attachment (bytes) a trial may store.
ENV_MAX_ATTACHMENT_BYTES = "DISTOPT_MAX_ATTACHMENT_BYTES"
#: Largest result message (bytes of JSON) a worker sends, read by the coordinator.
ENV_MAX_RESULT_BYTES = "DISTOPT_MAX_RESULT_BYTES"
