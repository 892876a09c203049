"""Ctrl-C and SIGTERM while a coordinator stops: the first one stops it, the others wait.

Impatient people press Ctrl-C twice. The first interrupt stops the coordinator loop; its
final writes (the study marked interrupted, the lease released) then must not be cut
short by the second one, or the study stays "running" with a lease nobody renews. Within
``stopping_once()`` the first SIGINT raises ``KeyboardInterrupt`` (the first SIGTERM runs
the handler that was there, e.g. the CLI's ``Terminated``), and every later one is only
noted until the outermost block exits: the shutdown finishes, then the process exits
with the first signal's status. Blocks nest (the CLI around a whole run, the
coordinator around its loop and final writes); only the main thread handles signals.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from types import FrameType
from typing import Any, Iterator

log = logging.getLogger(__name__)

_depth = 0
_first: int | None = None  # the signal that started the shutdown
_ignored = 0


_delivering = False  # the first signal is being handed to the handler that was there


def first_signal() -> int | None:
    """The signal that started the shutdown, while inside ``stopping_once``."""
    return _first


def stopping() -> bool:
    """True once an interrupt has started the shutdown (inside ``stopping_once``): a
    handler of its own should then ignore further signals."""
    return _first is not None and not _delivering


def _handle(previous: dict[int, Any]) -> Any:
    def handler(signum: int, frame: FrameType | None) -> None:
        global _first, _ignored
        if _first is not None:
            _ignored += 1
            if _ignored == 1:
                log.warning("still stopping: the study is being saved so it can be resumed (signal %s ignored)",
                            signal.Signals(signum).name)
            return
        global _delivering
        _first = signum
        before = previous.get(signum)
        if signum == signal.SIGTERM and callable(before):
            _delivering = True
            try:
                before(signum, frame)  # e.g. the CLI's Terminated(SystemExit)
            finally:
                _delivering = False
        raise KeyboardInterrupt

    return handler


@contextlib.contextmanager
def stopping_once(exiting: bool = False) -> Iterator[None]:
    """Within this block the first SIGINT/SIGTERM stops, later ones are noted and ignored
    (see the module docstring). SIGTERM is covered only where a Python handler for it was
    installed (its default, ending the process at once, is left alone). ``exiting``: the
    process ends when an interrupt leaves this block (a command), so later signals stay
    ignored instead of killing it on its way out with another status."""
    global _depth, _first, _ignored
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous: dict[int, Any] = {signal.SIGINT: signal.getsignal(signal.SIGINT)}
    term = signal.getsignal(signal.SIGTERM)
    if callable(term):
        previous[signal.SIGTERM] = term
    handler = _handle(previous)
    for sig in previous:
        signal.signal(sig, handler)
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        stay_ignored = exiting and _first is not None
        for sig, before in previous.items():
            signal.signal(sig, signal.SIG_IGN if stay_ignored else before)
        if stay_ignored:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if _depth == 0:
            _first, _ignored = None, 0


@contextlib.contextmanager
def finishing() -> Iterator[None]:
    """Final writes after a normal end: an interrupt that arrives now is noted and ignored
    (the run is over; cutting the writes short would only leave the study untrue)."""
    global _first
    if threading.current_thread() is not threading.main_thread() or _depth == 0:
        yield
        return
    started_here = _first is None
    if started_here:
        _first = signal.SIGINT  # later signals are deferred, as in a shutdown
    try:
        yield
    finally:
        if started_here and _depth > 0:
            _first = None


def stops_once(fn: Any) -> Any:
    """Decorate ``fn`` to run within ``stopping_once()``."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with stopping_once():
            return fn(*args, **kwargs)

    return wrapper
