"""RQ jobs run in this process on fakeredis: a clean worker state and a burst worker.

Shared by the unit tests that drive the job function through rq's ``SimpleWorker``.
"""

from typing import Iterator

from rq import SimpleWorker
from rq.serializers import JSONSerializer

from distopt.dispatch import jobs, rq_queue


def clean_worker(secret: bytes) -> Iterator[None]:
    """Body of an autouse fixture: this process is a worker with ``secret`` and no caches."""
    jobs.reset()
    jobs.configure(secret, insecure=False)
    yield
    jobs.reset()


def burst(storage) -> None:
    """Run every queued job of ``storage``'s Redis, then return."""
    worker = SimpleWorker([rq_queue(storage.client)], connection=storage.client, serializer=JSONSerializer)
    worker.work(burst=True, logging_level="WARNING")
