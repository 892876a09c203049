"""The default: every trial runs to its end."""

from __future__ import annotations

from typing import Any

from ._base import Pruner, Snapshot


class NopPruner(Pruner):
    """Never prunes; ``report`` only records the curve."""

    name = "none"

    def prune(self, snap: Snapshot) -> bool:
        return False

    def options(self) -> dict[str, Any]:
        return {}
