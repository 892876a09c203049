"""Tracebacks that name the user's file and line, also on a worker that has no copy of it.

cloudpickle ships the user's functions by value and renames their code objects'
file to ``"<dynamic-code>"`` (so a pickle does not depend on where it was made). A
traceback from a worker then says ``File "<dynamic-code>", line 7, in objective`` and
shows no source. The coordinator therefore ships, with the objective, a table from
each user code object (name and first line) to its file, and that file's lines; the
worker puts the file name and the source line back when it formats a traceback.
"""

from __future__ import annotations

import linecache
import threading
import traceback
import types
from typing import Any, Iterable, Mapping

#: The file name cloudpickle gives code it ships by value.
DYNAMIC = "<dynamic-code>"
#: Source kept per file (bytes of text); longer files are named without their lines.
MAX_SOURCE = 256 * 1024

_lock = threading.Lock()
_files: dict[str, str] = {}  # "name:firstline" -> file


def _codes(obj: Any, seen: set[int]) -> Iterable[types.CodeType]:
    """Code objects of functions, methods and the functions nested in them."""
    if isinstance(obj, (staticmethod, classmethod)):
        obj = obj.__func__
    if isinstance(obj, property):
        for part in (obj.fget, obj.fset, obj.fdel):
            yield from _codes(part, seen)
        return
    code = getattr(obj, "__code__", None)
    stack = [code] if isinstance(code, types.CodeType) else []
    while stack:
        code = stack.pop()
        if id(code) in seen:
            continue
        seen.add(id(code))
        yield code
        stack.extend(c for c in code.co_consts if isinstance(c, types.CodeType))


def code_table(modules: Iterable[types.ModuleType]) -> dict[str, Any]:
    """``{"files": {"name:firstline": file}, "sources": {file: lines}}`` for the
    functions and methods defined in ``modules``."""
    files: dict[str, str] = {}
    seen: set[int] = set()
    for module in modules:
        name = module.__name__
        for value in list(vars(module).values()):
            if getattr(value, "__module__", None) != name:
                continue
            members = list(vars(value).values()) if isinstance(value, type) else [value]
            for member in members:
                for code in _codes(member, seen):
                    if code.co_filename and not code.co_filename.startswith("<"):
                        files.setdefault(f"{code.co_name}:{code.co_firstlineno}", code.co_filename)
    sources = {}
    for file in set(files.values()):
        lines = linecache.getlines(file)
        if lines and sum(map(len, lines)) <= MAX_SOURCE:
            sources[file] = lines
    return {"files": files, "sources": sources}


def remember(table: Mapping[str, Any] | None) -> None:
    """Learn a shipped table (the worker does, when it loads an objective); its source
    lines go into ``linecache``, where tracebacks look them up."""
    if not table:
        return
    with _lock:
        _files.update(table.get("files") or {})
        for file, lines in (table.get("sources") or {}).items():
            linecache.cache[file] = (sum(map(len, lines)), None, list(lines), file)  # no mtime: kept as is


def format_exc(exc: BaseException) -> str:
    """``traceback.format_exc()`` with shipped code's file and source line put back."""
    frames = traceback.extract_tb(exc.__traceback__)
    tb = exc.__traceback__
    codes = []
    while tb is not None:
        codes.append(tb.tb_frame.f_code)
        tb = tb.tb_next
    with _lock:
        for i, (frame, code) in enumerate(zip(frames, codes)):
            file = _files.get(f"{code.co_name}:{code.co_firstlineno}") if frame.filename == DYNAMIC else None
            if file is not None:
                frames[i] = traceback.FrameSummary(file, frame.lineno, frame.name)
    out = ["Traceback (most recent call last):\n", *traceback.format_list(frames)]
    out += traceback.format_exception_only(type(exc), exc)
    return "".join(out)
