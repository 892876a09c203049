"""SIGTERM and SIGINT reach one handler within ``on_shutdown_signals``, and the handlers
that were there come back after it (the worker pool and the Redis wait both use it)."""

from __future__ import annotations

import os
import signal
import threading

from distopt.worker.shutdown import SHUTDOWN_SIGNALS, on_shutdown_signals


def test_both_signals_reach_the_handler_and_the_previous_handlers_come_back():
    before = {sig: signal.getsignal(sig) for sig in SHUTDOWN_SIGNALS}
    got: list[int] = []
    with on_shutdown_signals(lambda signum, frame: got.append(signum)) as previous:
        assert previous == before
        for sig in SHUTDOWN_SIGNALS:
            os.kill(os.getpid(), sig)  # delivered to the main thread before kill returns here
    assert got == [signal.SIGTERM, signal.SIGINT]
    assert {sig: signal.getsignal(sig) for sig in SHUTDOWN_SIGNALS} == before


def test_outside_the_main_thread_nothing_is_installed():
    seen: list[dict] = []

    def run() -> None:
        with on_shutdown_signals(lambda signum, frame: None) as previous:
            seen.append(previous)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=10)
    assert seen == [{}]


def test_a_stop_asked_for_before_rq_takes_the_signals_over_stops_the_worker(redis_url):
    """rq registers a worker before it installs its SIGTERM handler; a SIGTERM in between is
    noted by ``work`` and handed to rq's warm shutdown once rq installs it."""
    import redis

    from distopt.worker.rq_worker import make_worker

    before = {sig: signal.getsignal(sig) for sig in SHUTDOWN_SIGNALS}
    worker = make_worker(redis.Redis.from_url(redis_url))
    worker.asked_to_stop = [signal.SIGTERM]
    try:
        worker._install_signal_handlers()
        assert worker._stop_requested and worker._shutdown_requested_date is not None
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)
