"""The import direction of the house rules, checked on the source.

The sampler is pure (no storage, Redis, RQ, time or files); only the storage layer names
Redis keys; only the dispatch layer imports rq.
"""

import ast
import re
import pathlib

import pytest

PKG = pathlib.Path(__file__).resolve().parents[2] / "distopt"


def imports_of(path: pathlib.Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = "." * node.level + (node.module or "")
            found.add(base)
            found.update(f"{base}.{alias.name}" if node.module else f"{base}{alias.name}" for alias in node.names)
    return found


def modules(sub: str = "") -> list[pathlib.Path]:
    return sorted((PKG / sub).rglob("*.py"))


def test_package_exists():
    assert modules("algo") and modules("space") and modules("storage")


@pytest.mark.parametrize("path", modules("algo") + modules("space"), ids=lambda p: p.name)
def test_sampler_and_space_are_pure(path):
    banned = ("redis", "rq", "time", "socket", "os", "subprocess", "threading", "cloudpickle")
    for name in imports_of(path):
        root = name.lstrip(".").split(".")[0]
        assert root not in banned, f"{path.name} imports {name}"
        if name.startswith(".."):
            assert name.split(".")[2] in ("space", "errors", "algo") or name.startswith("..algo") or \
                name.startswith("..space") or name.startswith("..errors"), f"{path.name} imports {name}"


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PKG)))
def test_only_dispatch_and_worker_import_rq(path):
    if "dispatch" in path.parts or "worker" in path.parts:
        return
    assert not any(n == "rq" or n.startswith("rq.") for n in imports_of(path)), f"{path} imports rq"


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PKG)))
def test_only_storage_knows_key_names(path):
    """Outside storage/, the prefix may appear as a default value, never a key under it."""
    if "storage" in path.parts:
        return
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            assert not re.match(r"distopt:[A-Za-z{]", node.value), \
                f"{path} spells the Redis key {node.value!r}"
