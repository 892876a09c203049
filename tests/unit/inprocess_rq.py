"""RQ jobs run in this process on fakeredis: a clean worker state and a burst worker.

Shared by the unit tests that drive the job function through distopt's guarded ``SimpleWorker``.
"""

from typing import Iterator

from distopt.worker import guard, job
from distopt.worker.rq_worker import make_worker


def clean_worker(secret: bytes) -> Iterator[None]:
    """Body of an autouse fixture: this process is a worker with ``secret`` and no caches."""
    job.reset()
    guard.configure(secret, insecure=False)
    yield
    job.reset()


def burst(storage) -> None:
    """Run every queued job of ``storage``'s Redis with distopt's own worker class, then return."""
    make_worker(storage.client).work(burst=True, logging_level="WARNING")
