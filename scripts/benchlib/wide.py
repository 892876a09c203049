"""The wide benchmark: generated mixed/conditional problems and scikit-learn tasks, split
once into tuning instances (for choosing the sampler's defaults) and validation instances
(for judging them, never looked at while choosing).

Generated instances with an even index and the tasks in ``_SKLEARN_TUNING`` tune; odd
indices and the other tasks validate.
"""

from __future__ import annotations

import functools

from . import generated, sklearn_tasks
from .problems import ALL_PROBLEMS, Problem

_SKLEARN_TUNING = ("models_breast_cancer", "mlp_wine")


def _generated(i: int) -> Problem:
    inst = generated.instance(i)
    return Problem(inst.name, inst.space, inst.fn, 0.0, inst.describe(), inst.argmin, truth=inst.truth)


def _sklearn(task: str) -> Problem:
    best, point = sklearn_tasks.optimum(task)
    fn = functools.partial(sklearn_tasks.objective, task)
    return Problem(task, sklearn_tasks.task_space(task), fn, best, "scikit-learn, cached grid errors", point)


def sets() -> dict[str, list[str]]:
    """``{"tuning": [...], "validation": [...]}``: instance names."""
    gen = [f"gen{i:02d}" for i in range(generated.N_INSTANCES)]
    return {
        "tuning": gen[0::2] + [t for t in sklearn_tasks.TASKS if t in _SKLEARN_TUNING],
        "validation": gen[1::2] + [t for t in sklearn_tasks.TASKS if t not in _SKLEARN_TUNING],
    }


def _generated_index(name: str) -> int | None:
    """``gen07`` -> 7: the index of a generated instance's name (None for other names)."""
    return int(name[3:]) if name.startswith("gen") and name[3:].isdigit() else None


@functools.lru_cache(maxsize=None)
def problem(name: str) -> Problem:
    """Any benchmark problem by name: the classic ones, then the wide ones (built on first
    use; a scikit-learn task needs its table)."""
    if name in ALL_PROBLEMS:
        return ALL_PROBLEMS[name]
    index = _generated_index(name)
    if index is not None:
        return _generated(index)
    if name in sklearn_tasks.TASKS:
        return _sklearn(name)
    raise KeyError(name)


def trap_floor(name: str) -> float | None:
    """For a generated instance, the regret below which a run ended on the best branch
    (None for other problems)."""
    index = _generated_index(name)
    return None if index is None else generated.instance(index).trap_floor


def set_of(name: str) -> str:
    for label, names in sets().items():
        if name in names:
            return label
    if _generated_index(name) is not None:
        return "fresh"  # a generated instance past the fixed set: never used to choose anything
    return "classic"
