"""hyperopt's ``hyperopt.progress`` import path: progress context managers.

A progress callback takes ``initial`` and ``total`` and yields an object with
``update(n)`` (and a ``postfix``). ``tqdm_progress_callback`` routes the objective's
prints through tqdm so they do not break the bar, and restores ``sys.stdout`` after.
"""

from __future__ import annotations

import contextlib
import sys
from typing import Any, Iterator


class _TqdmWriter:
    """A stdout stand-in that writes through ``tqdm.write`` (above the bar)."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream

    def write(self, text: str) -> None:
        from tqdm import tqdm

        if text.rstrip():
            tqdm.write(text.rstrip("\n"), file=self.stream)

    def flush(self) -> None:
        getattr(self.stream, "flush", lambda: None)()


@contextlib.contextmanager
def tqdm_progress_callback(initial: int, total: int) -> Iterator[Any]:
    from tqdm import tqdm

    real_stdout = sys.stdout
    sys.stdout = _TqdmWriter(real_stdout)  # type: ignore[assignment]
    try:
        with tqdm(total=total, initial=initial, file=real_stdout, postfix={"best loss": "?"},
                  dynamic_ncols=True, unit="trial") as bar:
            yield bar
    finally:
        sys.stdout = real_stdout


@contextlib.contextmanager
def no_progress_callback(initial: int, total: int) -> Iterator[Any]:
    class NoProgress:
        postfix = ""

        def update(self, n: int) -> None:
            pass

    yield NoProgress()


default_callback = tqdm_progress_callback

__all__ = ["tqdm_progress_callback", "no_progress_callback", "default_callback"]
