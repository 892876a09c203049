"""Rules for the names users choose: study names and objective digests.

A study name ends up inside Redis keys and inside rq job ids, and rq job ids may hold only
letters, digits, ``_`` and ``-`` (no ``:``), so the rule is checked once, here, before a
name reaches either.
"""

from __future__ import annotations

import re
from typing import Iterable

from ..errors import DistoptError, InvalidName, StudyNotFound

STUDY_NAME_RULE = "1 to 100 characters from A-Z, a-z, 0-9, '_' and '-'"
_STUDY_NAME = re.compile(r"[A-Za-z0-9_-]{1,100}")
_DIGEST = re.compile(r"[A-Za-z0-9_.:+=-]{1,256}")
_WORKER = re.compile(r"[A-Za-z0-9_.:@+=-]{1,256}")


def validate_study_name(name: object) -> str:
    """Return ``name`` unchanged if it is a legal study name, else raise ``InvalidName``."""
    if not isinstance(name, str) or not _STUDY_NAME.fullmatch(name):
        raise InvalidName(
            f"invalid study name {name!r}: use {STUDY_NAME_RULE} "
            "(no ':' or spaces, because the name becomes part of rq job ids and Redis keys)"
        )
    return name


def validate_digest(digest: object) -> str:
    """Return ``digest`` unchanged if it can be used as a blob key, else raise ``InvalidName``."""
    if not isinstance(digest, str) or not _DIGEST.fullmatch(digest):
        raise InvalidName(
            f"invalid blob digest {digest!r}: expected 1 to 256 characters from "
            "A-Z, a-z, 0-9 and '_.:+=-' (a hex SHA-256 digest fits)"
        )
    return digest


def validate_worker_id(worker: object) -> str:
    """Return ``worker`` unchanged if it can name a worker's liveness record (``host:pid``
    fits), else raise ``InvalidName``."""
    if not isinstance(worker, str) or not _WORKER.fullmatch(worker):
        raise InvalidName(
            f"invalid worker id {worker!r}: expected 1 to 256 characters from A-Z, a-z, 0-9 and "
            "'_.:@+=-', such as host:pid"
        )
    return worker


def study_not_found(name: str, known: Iterable[str], where: str) -> StudyNotFound:
    """Build the error for a missing study, naming the studies that do exist."""
    names = sorted(known)
    if not names:
        hint = "no studies exist there yet; create one first (e.g. run an optimization)"
    else:
        shown = ", ".join(names[:20]) + (f", ... ({len(names)} in all)" if len(names) > 20 else "")
        hint = f"known studies: {shown}"
    return StudyNotFound(f"study {name!r} not found in {where}; {hint}")
