"""A pytest plugin that makes ``import hyperopt.X`` give ``distopt.X``.

Loaded only by the pytest subprocess that ``run_hyperopt_suite.py`` starts (``-p
tests.compat.alias``), so the alias never touches the rest of the test suite. A name maps
to a distopt module that really exists, or fails with ModuleNotFoundError: nothing is
faked. ``hyperopt.tests.*`` alone still loads from the installed hyperopt wheel, since
those are the test modules being run.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
from types import ModuleType

PREFIX = "hyperopt"
TESTS = "hyperopt.tests"


def wheel_dir() -> str:
    """The installed hyperopt package's directory, found without importing it."""
    spec = importlib.util.find_spec(PREFIX) if PREFIX not in sys.modules else sys.modules[PREFIX].__spec__
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("hyperopt is not installed: pip install 'hyperopt==0.3.*' to run its test suite")
    return list(spec.submodule_search_locations)[0]


class _Existing(importlib.abc.Loader):
    """Hands the import system a module that is already loaded, keeping its own spec."""

    def __init__(self, module: ModuleType) -> None:
        self.module = module
        self.spec = module.__spec__

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        return self.module

    def exec_module(self, module: ModuleType) -> None:
        module.__spec__ = self.spec  # the import system overwrote it with the alias's spec


class HyperoptAlias(importlib.abc.MetaPathFinder):
    def __init__(self, hyperopt_dir: str) -> None:
        self.root = os.path.dirname(hyperopt_dir)

    def find_spec(self, name, path=None, target=None):
        if name != PREFIX and not name.startswith(PREFIX + "."):
            return None
        if name == TESTS or name.startswith(TESTS + "."):
            return self._test_module(name)
        target_name = "distopt" + name[len(PREFIX):]
        try:
            module = importlib.import_module(target_name)
            self._sync(skip=name)
        except ModuleNotFoundError as exc:
            if exc.name is not None and (target_name == exc.name or target_name.startswith(exc.name + ".")):
                raise ModuleNotFoundError(f"No module named {name!r} ({target_name} does not exist)", name=name) from None
            raise
        return importlib.machinery.ModuleSpec(name, _Existing(module), is_package=hasattr(module, "__path__"))

    @staticmethod
    def _sync(skip: str) -> None:
        """Alias every distopt module already loaded. Importing ``hyperopt.fmin`` through a
        spec would make the import system set ``distopt.fmin`` (the function) to the module
        of that name; a module found in sys.modules is returned as is, as in hyperopt."""
        for key, module in list(sys.modules.items()):
            if key == "distopt" or key.startswith("distopt."):
                alias = PREFIX + key[len("distopt"):]
                if alias != skip and alias not in sys.modules:
                    sys.modules[alias] = module

    def _test_module(self, name: str):
        base = os.path.join(self.root, *name.split("."))
        if os.path.isdir(base):
            return importlib.util.spec_from_file_location(
                name, os.path.join(base, "__init__.py"), submodule_search_locations=[base])
        if os.path.isfile(base + ".py"):
            return importlib.util.spec_from_file_location(name, base + ".py")
        return None


def install() -> None:
    if not any(isinstance(f, HyperoptAlias) for f in sys.meta_path):
        sys.meta_path.insert(0, HyperoptAlias(wheel_dir()))


install()  # at plugin import, before pytest imports any test module
