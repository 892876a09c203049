"""Which coordinator and worker versions work together, by rule.

A pickled objective loads on a worker when the Python and cloudpickle that made it and
the ones that load it agree on major.minor: bytecode changes between Python minor
releases, cloudpickle's wire format between its minor releases. A patch difference
(3.1.2 against 3.1.3) is compatible and only warned about, once. Machines installed on
different days then still work together, and a real mismatch is named before any
trial runs, with the hosts that have it.
"""

from __future__ import annotations

import dataclasses
import logging
import platform
from typing import Mapping

import cloudpickle

from ..errors import DistoptError

log = logging.getLogger(__name__)

#: The packages whose versions must agree, in the order messages name them.
CHECKED = ("python", "cloudpickle")


def local_versions() -> dict[str, str]:
    """This process's versions: full Python, cloudpickle and distopt versions."""
    from ..defaults import VERSION as __version__

    return {"python": platform.python_version(), "cloudpickle": cloudpickle.__version__, "distopt": __version__}


def _major_minor(version: str) -> tuple[str, ...]:
    return tuple(str(version).split(".")[:2])


@dataclasses.dataclass(frozen=True)
class Verdict:
    """How two sets of versions compare: ``compatible`` (major.minor of every checked
    package agree) and the differences, as "cloudpickle 3.1.2 vs 3.1.3"."""

    compatible: bool
    differences: tuple[str, ...]

    @property
    def identical(self) -> bool:
        return not self.differences


def compare(mine: Mapping[str, str], theirs: Mapping[str, str]) -> Verdict:
    """Compare two version maps; a package missing on either side is not compared
    (an older worker that published nothing is checked when it loads the objective)."""
    differences, compatible = [], True
    for name in CHECKED:
        a, b = mine.get(name), theirs.get(name)
        if not a or not b or a == b:
            continue
        # the blob header of older coordinators carries Python as major.minor only
        if _major_minor(a) == _major_minor(b):
            if len(str(a).split(".")) > 2 and len(str(b).split(".")) > 2:
                differences.append(f"{name} {a} vs {b}")
            continue
        compatible = False
        differences.append(f"{name} {a} vs {b}")
    return Verdict(compatible, tuple(differences))


_warned: set[tuple[str, ...]] = set()


def warn_once(what: str, verdict: Verdict) -> None:
    """Log a compatible (patch) difference once per process and difference."""
    key = (what, *verdict.differences)
    if verdict.identical or key in _warned:
        return
    _warned.add(key)
    log.warning("%s: %s differ in the patch version only, which works; install the same versions everywhere "
                "to be sure", what, ", ".join(verdict.differences))


def check_workers(coordinator: Mapping[str, str], workers: Mapping[str, Mapping[str, str] | None],
                  queue: str) -> None:
    """Refuse workers whose versions cannot load this coordinator's objective, naming each
    host (``workers``: worker name -> its published versions, None when it published none);
    warn once about patch differences."""
    bad: dict[str, str] = {}
    for name, versions in sorted(workers.items()):
        if not versions:
            continue
        verdict = compare(coordinator, versions)
        if not verdict.compatible:
            bad[name] = ", ".join(verdict.differences)
        else:
            warn_once(f"worker {name} on queue {queue!r}", verdict)
    if bad:
        listed = "; ".join(f"{name}: {why}" for name, why in bad.items())
        mine = ", ".join(f"{k} {coordinator[k]}" for k in CHECKED if k in coordinator)
        raise DistoptError(
            f"{len(bad)} worker(s) listening on queue {queue!r} cannot load this coordinator's objective "
            f"(Python and cloudpickle must agree on major.minor; this coordinator has {mine}): {listed}. "
            "Install matching versions on those hosts (pip install 'cloudpickle==X.Y.*', the same Python "
            "minor release), or stop them; no trial was started"
        )
