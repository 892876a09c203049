"""Running trials on rq workers. The only part of distopt that imports rq.

- ``jobs``: the job protocol: the function a job names, job ids, signed payloads (the
  function itself runs on the worker: ``distopt.worker.job.run_trial``);
- ``rq_executor``: ``RQExecutor``, the coordinator's side (enqueue, collect, cancel);
- ``objective``: shipping and signing the objective;
- ``secret``: where the signing secret comes from (argument, file, $DISTOPT_SECRET);
- ``inspect``: what rq knows about queues and workers.
"""

from .rq_executor import DEFAULT_QUEUE, RQExecutor, rq_queue
from .jobs import JOB_FUNC, job_id

__all__ = ["DEFAULT_QUEUE", "RQExecutor", "rq_queue", "JOB_FUNC", "job_id"]
