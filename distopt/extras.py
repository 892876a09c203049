"""Optional dependencies (pandas, matplotlib) imported on first use.

distopt's core runs without them; a feature that needs one says which ``pip install``
extra brings it, instead of failing with a bare ``ModuleNotFoundError``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from .errors import DistoptError


class MissingExtra(DistoptError, ImportError):
    """An optional dependency is not installed (the message names the pip extra)."""


def require(module: str, extra: str, purpose: str) -> ModuleType:
    """Import ``module`` or raise ``MissingExtra`` naming ``pip install distopt[extra]``."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtra(
            f"{purpose} needs {module.split('.')[0]}, which is not installed; "
            f"install it with: pip install 'distopt[{extra}]'"
        ) from exc
