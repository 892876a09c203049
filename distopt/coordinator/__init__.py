"""The one process that owns a study: the ask/submit/collect loop, the inline executor, the
distributed wiring, the lease, the reaper, the idle-queue watch, fail-fast and cancel."""

# The names this package's flat module used to export, loaded on first use so that importing
# one submodule does not import the whole layer.
from importlib import import_module as _import_module
from typing import Any as _Any


def __getattr__(name: str) -> _Any:
    if name.startswith("__"):
        raise AttributeError(name)
    return getattr(_import_module(".loop", __name__), name)
