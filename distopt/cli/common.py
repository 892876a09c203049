"""What every ``distopt`` command shares: the Redis URL variable and one error style.

Errors distopt raises on purpose print as ``Error: <message>`` (click's own style, so
usage errors and ours look alike), with no traceback, and exit 1.

Exit codes: 0 done; 1 an error (usage, study file, Redis, no successful trial); 3 the
study was cancelled (``distopt cancel``) while this command ran it; 130 Ctrl-C; 143
SIGTERM. Scripts can tell "cancelled on purpose" from "failed" and from "interrupted".
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import click

from ..errors import DistoptError

from ..defaults import ENV_REDIS_URL  # noqa: E402
EXIT_ERROR = 1
#: ``distopt run`` whose study was ended by ``distopt cancel``.
EXIT_CANCELLED = 3
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143


@contextlib.contextmanager
def reported() -> Iterator[None]:
    """A DistoptError becomes ``Error: <message>`` and exit code 1, without a traceback."""
    try:
        yield
    except DistoptError as exc:
        raise click.ClickException(str(exc)) from None
