"""What runs on worker machines: the trial job (``job.run_trial``: ``guard`` checks it,
``loading`` loads its objective, ``messages`` reports on it), heartbeats, the per-trial
time limit, one rq worker loop, and the pool of local worker processes."""

# The names this package's flat module used to export, loaded on first use so that importing
# one submodule does not import the whole layer.
from importlib import import_module as _import_module
from typing import Any as _Any


def __getattr__(name: str) -> _Any:
    if name.startswith("__"):
        raise AttributeError(name)
    return getattr(_import_module(".pool", __name__), name)
