"""The import direction of the house rules, checked on the source.

Folders follow the way of a trial, and imports point only down this list:

    errors/defaults <- space <- algo <- trial <- storage <- study <- dispatch <- worker <- coordinator
    <- monitor <- compat <- cli

(the coordinator runs trials in process through the worker's code, so it sits just above it).
The top-level modules that are hyperopt's import paths and ``__init__`` are the public
surface: they may import any layer, no layer imports them. The sampler and the space are pure
(no storage, Redis, rq, time or files); only ``storage/redis/`` spells Redis keys; only
``dispatch/`` and ``worker/`` import rq; there is no import cycle, imports inside functions
included.
"""

from __future__ import annotations

import ast
import pathlib
import re

import pytest

PKG = pathlib.Path(__file__).resolve().parents[2] / "distopt"

LAYERS = ["errors", "defaults", "space", "algo", "trial", "storage", "study", "dispatch", "worker", "coordinator",
          "monitor", "compat", "cli"]
RANK = {"errors": 0, "defaults": 0, **{name: i for i, name in enumerate(LAYERS) if i > 1}}
RANK["pruners"] = RANK["algo"]  # pure decisions on arrays of intermediate values, as the samplers
PUBLIC = len(LAYERS)  # the top-level import paths: above every layer


def module_name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules(sub: str = "") -> list[pathlib.Path]:
    return sorted((PKG / sub).rglob("*.py"))


ALL = {module_name(p): p for p in modules()}


def distopt_imports(path: pathlib.Path) -> set[str]:
    """Every distopt module this file imports, at the top or inside a function."""
    here = module_name(path)
    package = here if path.name == "__init__.py" else here.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            subs = [f"{mod}.{a.name}" for a in node.names]
            # `from pkg import submodule` imports the submodule, not a name of pkg's own
            names = subs + ([mod] if not all(s in ALL for s in subs) else [])
        else:
            continue
        for name in names:
            parts = name.split(".")
            # the longest prefix that is a module of the package
            for cut in range(len(parts), 0, -1):
                if ".".join(parts[:cut]) in ALL:
                    found.add(".".join(parts[:cut]))
                    break
    found.discard(here)
    return found


def layer_of(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1:
        return "distopt"
    if parts[1] in RANK:
        return parts[1]
    return "public"  # __init__, __main__, hyperopt's paths (fmin, hp, tpe, ..., pyll)


def rank_of(module: str) -> int:
    layer = layer_of(module)
    return RANK[layer] if layer in RANK else PUBLIC


def all_imports(path: pathlib.Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = "." * node.level + (node.module or "")
            found.add(base)
    return found


def test_every_folder_is_a_layer():
    folders = {p.name for p in PKG.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert folders - {"pyll"} <= set(RANK), folders - set(RANK)
    assert modules("algo") and modules("space") and modules("storage") and modules("pruners")


# Imports that still point up, each with why; the list only shrinks.
KNOWN_UPWARD: set[tuple[str, str]] = set()
KNOWN_CYCLES: set[frozenset[str]] = set()


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PKG)))
def test_imports_point_down_the_layers(path):
    here = module_name(path)
    if layer_of(here) in ("public", "distopt"):
        return
    mine = rank_of(here)
    for target in sorted(distopt_imports(path)):
        if (here, target) in KNOWN_UPWARD:
            continue
        assert rank_of(target) <= mine, (
            f"{here} ({layer_of(here)}) imports {target} ({layer_of(target)}), a layer above it")


def test_known_exceptions_are_still_needed():
    for here, target in KNOWN_UPWARD:
        assert target in distopt_imports(ALL[here]), f"{here} no longer imports {target}: drop it from KNOWN_UPWARD"


@pytest.mark.parametrize("path", modules("algo") + modules("space") + modules("pruners"),
                         ids=lambda p: str(p.relative_to(PKG)))
def test_sampler_and_space_are_pure(path):
    banned = ("redis", "rq", "time", "socket", "os", "subprocess", "threading", "cloudpickle")
    for name in all_imports(path):
        root = name.lstrip(".").split(".")[0]
        if not name.startswith("."):
            assert root not in banned, f"{path.name} imports {name}"
    for target in distopt_imports(path):
        assert layer_of(target) in ("errors", "defaults", "space", "algo", "pruners"), f"{path.name} imports {target}"


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PKG)))
def test_only_dispatch_and_worker_import_rq(path):
    if layer_of(module_name(path)) in ("dispatch", "worker"):
        return
    assert not any(n == "rq" or n.startswith("rq.") for n in all_imports(path)), f"{path} imports rq"


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PKG)))
def test_only_storage_redis_knows_key_names(path):
    """Outside storage/redis/, the prefix may appear as a default value, never a key under it."""
    if module_name(path).startswith("distopt.storage.redis"):
        return
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            assert not re.match(r"distopt:[A-Za-z{]", node.value), \
                f"{path} spells the Redis key {node.value!r}"


def test_no_import_cycle_counting_imports_inside_functions():
    """A package's ``__init__`` is left out as an edge target: importing ``a.b`` runs ``a``'s
    ``__init__`` first, but what the cycle rule is about is modules needing each other."""
    graph = {m: {t for t in distopt_imports(p) if not ALL[t].name == "__init__.py"} for m, p in ALL.items()
             if ALL[m].name != "__init__.py"}
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for t in sorted(graph.get(m, ())):
            if state.get(t) == 1:
                cycles.append(stack[stack.index(t):] + [t])
            elif t not in state:
                visit(t)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)
    cycles = [c for c in cycles if frozenset(c) not in KNOWN_CYCLES]
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


MAX_LINES = 450
#: The top level holds only public import paths (hyperopt's and distopt's), errors and defaults.
TOP_LEVEL = {"__init__", "__main__", "errors", "defaults", "fmin", "hp", "tpe", "rand", "anneal", "mix", "atpe",
             "base", "exceptions", "early_stop", "progress", "plotting", "trials", "redis_trials"}


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PKG)))
def test_no_module_is_over_the_line_limit(path):
    n = len(path.read_text().splitlines())
    assert n <= MAX_LINES, f"{path.relative_to(PKG)} has {n} lines (limit {MAX_LINES}): split it by job"


def test_the_top_level_holds_only_public_paths_errors_and_defaults():
    assert {p.stem for p in PKG.glob("*.py")} <= TOP_LEVEL
