"""A study file: Python defining ``objective`` (a function or an import path
'package.module:function') and ``space``, and optionally ``algo``, ``max_evals`` and
``pruner``. Loading one imports it as a module of its own and checks each of those
values, naming the fix when one is wrong; ``run_study.run_study_file`` runs it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import os
import re
import sys
from pathlib import Path
from typing import Any, Callable

from ..defaults import NO_LIMIT, max_evals_count
from ..dispatch.objective import is_import_path
from ..errors import DistoptError

ALGOS = ("tpe", "rand", "anneal")
DEFAULT_MAX_EVALS = 100


@dataclasses.dataclass
class StudyFile:
    """What a study file defines."""

    path: Path
    objective: Callable[[Any], Any] | str
    space: Any
    algo: Callable[..., Any] | None = None
    max_evals: int | None = None
    #: ``pruner = "median"`` (or a ``distopt.pruners`` instance, or a JSON spec) in the file
    pruner: Any = None


def load_study_file(path: str | os.PathLike[str]) -> StudyFile:
    """Import a study file as a module of its own (its directory joins ``sys.path``, as
    for ``python FILE``), so its functions pickle by value for the workers."""
    file = Path(path).resolve()
    if not file.is_file():
        raise DistoptError(f"study file {str(path)!r} does not exist")
    digest = hashlib.sha1(str(file).encode()).hexdigest()[:8]
    name = f"distopt_study_{re.sub(r'[^0-9A-Za-z_]', '_', file.stem)}_{digest}"
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:
        raise DistoptError(f"cannot load {str(path)!r} as Python: give a .py file")
    module = importlib.util.module_from_spec(spec)
    if str(file.parent) not in sys.path:
        sys.path.insert(0, str(file.parent))
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[name]
        raise DistoptError(f"study file {str(path)!r} failed to run: {type(exc).__name__}: {exc}") from exc
    missing = [n for n in ("objective", "space") if not hasattr(module, n)]
    if missing:
        raise DistoptError(
            f"study file {str(path)!r} defines no {' and no '.join(missing)}: it needs `objective` "
            "(a function of one argument, or 'package.module:function') and `space` (an hp expression)"
        )
    objective = module.objective
    if not callable(objective) and not is_import_path(objective):
        raise DistoptError(f"`objective` in {str(path)!r} must be a function or 'package.module:function', "
                           f"got {objective!r}")
    algo = _file_algo(getattr(module, "algo", None), path)
    max_evals = _file_max_evals(getattr(module, "max_evals", None), path)
    return StudyFile(file, objective, module.space, algo, max_evals, _file_pruner(getattr(module, "pruner", None), path))


def _file_pruner(value: Any, path: str | os.PathLike[str]) -> Any:
    """A study file's ``pruner``: a name, a JSON spec or a ``distopt.pruners`` instance."""
    if value is None:
        return None
    from ..pruners import make_pruner

    try:
        return make_pruner(value)
    except DistoptError as exc:
        raise DistoptError(f"`pruner = {value!r}` in {str(path)!r}: {exc}") from exc


def _file_algo(value: Any, path: str | os.PathLike[str]) -> Callable[..., Any] | None:
    """A study file's ``algo``: a suggest function, or the name of a built-in one (a
    string is a common slip, and saying so beats a TypeError deep in the sampler)."""
    if value is None or callable(value):
        return value
    if isinstance(value, str) and value.strip().lower() in ALGOS:
        return algo_by_name(value.strip().lower())
    raise DistoptError(
        f"`algo = {value!r}` in {str(path)!r} is not a sampler: write `algo = tpe.suggest` or "
        f"`algo = rand.suggest` (from distopt import tpe, rand), or one of the names {', '.join(map(repr, ALGOS))}"
    )


def _file_max_evals(value: Any, path: str | os.PathLike[str]) -> int | None:
    """A study file's ``max_evals``: a whole number >= 0 (0 runs no trial, as
    ``--max-evals 0`` does); anything else is named with the fix, not a ValueError."""
    if value is None:
        return None
    try:
        count = max_evals_count(value)
        return NO_LIMIT if count is None else count  # infinity: no limit, as fmin takes it
    except ValueError:
        pass
    raise DistoptError(
        f"`max_evals = {value!r}` in {str(path)!r} is not a number of trials: write a whole number >= 0, "
        f"e.g. `max_evals = {DEFAULT_MAX_EVALS}`, or leave it out for {DEFAULT_MAX_EVALS} (--max-evals overrides it)"
    )


def algo_by_name(name: str) -> Callable[..., Any]:
    """The built-in sampler called ``name`` ("tpe", "rand" or "anneal")."""
    from ..algo import anneal, rand, tpe

    table = {"tpe": tpe.suggest, "rand": rand.suggest, "anneal": anneal.suggest}
    if name not in table:
        raise DistoptError(f"unknown algo {name!r}: choose one of {', '.join(ALGOS)}")
    return table[name]


def default_study_name(path: str | os.PathLike[str]) -> str:
    """The study name of a run without --study: the file's name and a short hash of its
    full path, the same every time the file is run on this machine, so running the same
    command again resumes the study (two files called study.py get two names)."""
    file = Path(path).resolve()
    stem = re.sub(r"[^A-Za-z0-9_-]", "-", file.stem)[:60] or "study"
    return f"{stem}-{hashlib.sha1(str(file).encode()).hexdigest()[:6]}"
