"""How a process is asked to stop, and the one way distopt listens for it.

SIGTERM (a supervisor, ``docker stop``, systemd) and SIGINT (Ctrl-C) both mean "stop";
``on_shutdown_signals`` hands them to one handler for the length of a block and puts back
what was there after it. Only the main thread can handle signals: elsewhere the block
changes nothing. (The coordinator's ``stopping_once`` goes further: its first signal
interrupts the loop and later ones wait for the final writes.)
"""

from __future__ import annotations

import contextlib
import signal
import threading
from types import FrameType
from typing import Any, Callable, Iterator

#: The signals that ask a distopt process to stop.
SHUTDOWN_SIGNALS = (signal.SIGTERM, signal.SIGINT)

Handler = Callable[[int, "FrameType | None"], Any]


@contextlib.contextmanager
def on_shutdown_signals(handler: Handler) -> Iterator[dict[int, Any]]:
    """Within this block ``handler(signum, frame)`` receives SIGTERM and SIGINT; yields the
    handlers it replaced (empty outside the main thread, where nothing is installed)."""
    if threading.current_thread() is not threading.main_thread():
        yield {}
        return
    previous = {sig: signal.signal(sig, handler) for sig in SHUTDOWN_SIGNALS}
    try:
        yield previous
    finally:
        for sig, before in previous.items():
            signal.signal(sig, before)
