"""Running trials on rq workers. The only part of distopt that imports rq.

- ``jobs``: the job function workers run, job ids and payloads;
- ``executor``: ``RQExecutor``, the coordinator's side (enqueue, collect, cancel);
- ``worker``: starting rq workers on distopt's queues;
- ``heartbeat``: liveness of running trials.
"""

from .executor import DEFAULT_QUEUE, RQExecutor, rq_queue
from .jobs import JOB_FUNC, job_id, run_trial
from .worker import count_workers, make_worker, work

__all__ = ["DEFAULT_QUEUE", "RQExecutor", "rq_queue", "JOB_FUNC", "job_id", "run_trial",
           "count_workers", "make_worker", "work"]
