"""Shipping the objective to workers: pickle once, sign, verify, cache.

The only pickle that travels is the objective (with the space, so workers can turn a
trial's ``vals`` into the exact value the objective receives). It is stored once per
study under the SHA-256 digest of the blob and signed with HMAC-SHA256 using a secret
the coordinator and the workers share, because unpickling runs code: a worker verifies
the signature before it unpickles anything, and refuses a blob it cannot verify.

Blob layout::

    MAGIC (8 bytes) | HMAC-SHA256 (32 bytes, zeros when unsigned)
    | header length (4 bytes, big endian) | header JSON | payload (cloudpickle)

The HMAC covers everything after itself. The header records the Python (major.minor)
and cloudpickle versions, because a pickle made by another version may not load.

An objective can instead be an import path ``package.module:function`` for code
installed on the workers; then nothing is pickled.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import hashlib
import hmac
import importlib
import json
import logging
import os
import platform
import re
import site
import struct
import sys
import sysconfig
import threading
import types
from typing import Any, Callable, Iterable, Mapping

import cloudpickle

from ..errors import ObjectiveError
from ..trial.tracebacks import code_table
from ..defaults import ENV_SECRET
from .secret import NO_SECRET_HELP
from .versions import compare, local_versions, warn_once

log = logging.getLogger(__name__)

MAGIC = b"DSTOPT1\n"
_SIG_LEN = 32
_HEADER = struct.Struct(">I")
_IMPORT_PATH = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*")
#: What an import path's HMAC covers besides the path, so it can never pass for a blob's.
_PATH_DOMAIN = b"distopt-import-path\0"

def python_version() -> str:
    return f"{sys.version_info.major}.{sys.version_info.minor}"


# -- what the job carries --------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class ObjectiveRef:
    """How a worker finds the objective: a blob ``digest`` or an import ``path``. A path
    carries ``sig``, its HMAC, because importing any callable a job names and calling it
    with the job's values would run code as surely as an unsigned pickle."""

    name: str
    digest: str | None = None
    path: str | None = None
    sig: str | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name}
        if self.digest is not None:
            data["digest"] = self.digest
        if self.path is not None:
            data["path"] = self.path
        if self.sig is not None:
            data["sig"] = self.sig
        return data

    @property
    def key(self) -> str:
        """"digest:<sha256>" or "path:<module:function>": what a study's meta lists."""
        return f"digest:{self.digest}" if self.digest is not None else f"path:{self.path}"

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "ObjectiveRef":
        return cls(name=str(data.get("name", "?")), digest=data.get("digest"), path=data.get("path"),
                   sig=data.get("sig"))


def path_ref(path: str, secret: bytes | None) -> ObjectiveRef:
    """The reference to an import-path objective, signed when there is a secret."""
    check_import_path(path)
    sig = None if secret is None else _sign(secret, _PATH_DOMAIN + path.encode()).hex()
    return ObjectiveRef(name=path, path=path, sig=sig)


def verify_path(ref: ObjectiveRef, *, secret: bytes | None, insecure: bool) -> str:
    """The import path of ``ref`` once its signature verifies (as ``unpack`` does for blobs)."""
    path = check_import_path(str(ref.path))
    if ref.sig is not None and secret is not None:
        expected = _sign(secret, _PATH_DOMAIN + path.encode()).hex()
        if not hmac.compare_digest(ref.sig, expected):
            raise ObjectiveError(
                f"objective {path!r}: the HMAC signature of the import path does not verify, so the job "
                f"was made with a different secret or tampered with; refusing to import it. Give the "
                f"coordinator and this worker the same {ENV_SECRET} (or --secret-file)"
            )
    elif ref.sig is not None and not insecure:
        raise ObjectiveError(f"objective {path!r} is signed but this worker has no secret: {NO_SECRET_HELP}")
    elif ref.sig is None and not insecure:
        raise ObjectiveError(
            f"objective {path!r} is an unsigned import path (its coordinator ran with insecure=True and "
            f"no secret) and this worker only accepts signed objectives; set the same {ENV_SECRET} on "
            "the coordinator, or start this worker with --insecure"
        )
    return path


def objective_name(fn: Any) -> str:
    """A readable name for messages: ``module.qualname`` or a short repr."""
    if isinstance(fn, str):
        return fn
    target = fn.func if isinstance(fn, functools.partial) else fn
    qual = getattr(target, "__qualname__", None)
    if qual is None:
        return repr(fn)[:100]
    return f"{getattr(target, '__module__', '?')}.{qual}"


def is_import_path(value: Any) -> bool:
    return isinstance(value, str) and bool(_IMPORT_PATH.fullmatch(value))


def check_import_path(path: str) -> str:
    if not is_import_path(path):
        raise ObjectiveError(
            f"objective {path!r} is not an import path: write 'package.module:function' "
            "(code installed on the workers), or pass the function itself to ship it pickled"
        )
    return path


def import_objective(path: str) -> Callable[[Any], Any]:
    """Import ``package.module:function`` (the attribute may be dotted)."""
    module_name, _, attr = check_import_path(path).partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise ObjectiveError(
            f"cannot import the objective {path!r}: {type(exc).__name__}: {exc}; install the package "
            "that provides it on this machine (or ship the function pickled instead of by path)"
        ) from exc
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ObjectiveError(f"cannot load the objective {path!r}: {module_name} has no attribute {attr!r}") from None
    if not callable(obj):
        raise ObjectiveError(f"the objective {path!r} is a {type(obj).__name__}, not a callable")
    return obj


# -- pickling by value ---------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def _installed_roots() -> tuple[str, ...]:
    """Directories of the standard library and of installed packages (as given and with
    symlinks resolved)."""
    paths = {sysconfig.get_paths().get(k) for k in ("stdlib", "platstdlib", "purelib", "platlib")}
    paths.update(site.getsitepackages() if hasattr(site, "getsitepackages") else [])
    paths.add(site.getusersitepackages() if hasattr(site, "getusersitepackages") else None)
    found = {os.path.abspath(p) for p in paths if p} | {os.path.realpath(p) for p in paths if p}
    return tuple(p.rstrip(os.sep) + os.sep for p in found)


@functools.lru_cache(maxsize=4096)
def _outside_installed(file: str) -> bool:
    roots = _installed_roots()
    if os.path.abspath(file).startswith(roots):  # no system call: the common case
        return False
    return not os.path.realpath(file).startswith(roots)


def _is_user_module(name: str, module: types.ModuleType) -> bool:
    """True for code outside the standard library and site-packages: the user's scripts
    and project directories (editable installs included), which a worker on another
    machine cannot be expected to have. distopt itself is always on the workers."""
    top = name.partition(".")[0]
    if name == "__main__" or top == "distopt" or top in sys.stdlib_module_names or top in sys.builtin_module_names:
        return False
    file = getattr(module, "__file__", None)
    return bool(file) and _outside_installed(file)


def user_code_modules() -> list[types.ModuleType]:
    """Every loaded module of the user's own code (what cloudpickle ships by value), for
    the table that lets tracebacks name the user's files."""
    return [m for n, m in list(sys.modules.items())
            if isinstance(m, types.ModuleType) and (n == "__main__" or _is_user_module(n, m))]


def user_modules(modules: Mapping[str, types.ModuleType] | None = None) -> list[types.ModuleType]:
    """The loaded modules to pickle by value: top-level user packages and modules.

    Registering a module by value only matters for objects the objective refers to, so
    registering every user module is cheap and also covers helpers the objective imports.
    """
    mods = dict(sys.modules if modules is None else modules)
    chosen: dict[str, types.ModuleType] = {}
    for name, module in mods.items():
        if not isinstance(module, types.ModuleType) or not _is_user_module(name, module):
            continue
        top = name.partition(".")[0]
        root = mods.get(top)
        if isinstance(root, types.ModuleType) and _is_user_module(top, root):
            chosen[top] = root
        else:
            chosen[name] = module
    return list(chosen.values())


class _ByValue:
    """Register modules with cloudpickle by value for the duration of a dump."""

    _lock = threading.Lock()

    def __init__(self, modules: Iterable[types.ModuleType]) -> None:
        self.modules = list(modules)
        self.added: list[types.ModuleType] = []

    def __enter__(self) -> None:
        self._lock.acquire()
        registered = getattr(cloudpickle.cloudpickle, "_PICKLE_BY_VALUE_MODULES", set())
        for module in self.modules:
            if module.__name__ in registered or module.__name__ not in sys.modules:
                continue
            try:
                cloudpickle.register_pickle_by_value(module)
            except ValueError:  # not importable under its name: cloudpickle decides
                continue
            self.added.append(module)

    def __exit__(self, *exc: Any) -> None:
        try:
            for module in self.added:
                cloudpickle.unregister_pickle_by_value(module)
        finally:
            self._lock.release()


# -- blobs -------------------------------------------------------------------------------
def _sign(secret: bytes | None, body: bytes) -> bytes:
    if secret is None:
        return b"\0" * _SIG_LEN
    return hmac.new(secret, body, hashlib.sha256).digest()


def pack(obj: Any, *, name: str, secret: bytes | None) -> tuple[str, bytes]:
    """(digest, blob) for ``obj``, pickled with cloudpickle and signed with ``secret``."""
    payload = cloudpickle.dumps(obj, protocol=cloudpickle.DEFAULT_PROTOCOL)
    header = json.dumps({
        "name": name,
        "python": python_version(),
        "python_full": platform.python_version(),
        "cloudpickle": cloudpickle.__version__,
        "signed": secret is not None,
    }, sort_keys=True).encode()
    body = _HEADER.pack(len(header)) + header + payload
    blob = MAGIC + _sign(secret, body) + body
    return hashlib.sha256(blob).hexdigest(), blob


def pickle_objective(fn: Callable[[Any], Any], space: Any, *, secret: bytes | None) -> tuple[ObjectiveRef, bytes]:
    """Pickle ``(fn, space)`` and check that it loads again, so an objective that cannot
    travel fails here, before anything is enqueued, with the reason."""
    name = objective_name(fn)
    try:
        with _ByValue(user_modules()):
            digest, blob = pack({"fn": fn, "space": space, "code": code_table(user_code_modules())}, name=name,
                                secret=secret)
        cloudpickle.loads(_split(blob)[2])
    except Exception as exc:
        raise ObjectiveError(
            f"the objective {name} cannot be sent to workers: cloudpickle failed with "
            f"{type(exc).__name__}: {exc}. Everything the objective refers to must be picklable: "
            "create locks, clients, open files and the like inside the objective, or give the "
            "objective as an import path 'package.module:function' installed on the workers"
        ) from exc
    return ObjectiveRef(name=name, digest=digest), blob


def _split(blob: bytes) -> tuple[bytes, bytes, bytes]:
    """(signature, signed body, payload) of a blob whose layout was checked."""
    sig, body = blob[len(MAGIC):len(MAGIC) + _SIG_LEN], blob[len(MAGIC) + _SIG_LEN:]
    (hlen,) = _HEADER.unpack_from(body, 0)
    return sig, body, body[_HEADER.size + hlen:]


def unpack(blob: bytes, digest: str, *, secret: bytes | None, insecure: bool) -> tuple[dict[str, Any], Any]:
    """Verify ``blob`` against ``digest`` and the shared secret, then unpickle it.

    Nothing is unpickled before the signature verifies; every refusal names the reason
    and what to change.
    """
    if hashlib.sha256(blob).hexdigest() != digest:
        raise ObjectiveError(
            f"objective blob {digest[:12]} was altered in Redis: its SHA-256 no longer matches its "
            "digest; refusing to load it (restart the study to store it again)"
        )
    if not blob.startswith(MAGIC) or len(blob) < len(MAGIC) + _SIG_LEN + _HEADER.size:
        raise ObjectiveError(f"objective blob {digest[:12]} is not a distopt objective (bad magic or too short)")
    sig, body, payload = _split(blob)
    signed = sig != b"\0" * _SIG_LEN
    if signed and secret is not None:
        if not hmac.compare_digest(sig, _sign(secret, body)):
            raise ObjectiveError(
                f"objective blob {digest[:12]}: the HMAC signature does not verify, so it was signed "
                f"with a different secret or tampered with; refusing to unpickle it. Give the "
                f"coordinator and this worker the same {ENV_SECRET} (or --secret-file)"
            )
    elif signed and not insecure:
        raise ObjectiveError(f"objective blob {digest[:12]} is signed but this worker has no secret: {NO_SECRET_HELP}")
    elif not signed and not insecure:
        raise ObjectiveError(
            f"objective blob {digest[:12]} is unsigned (its coordinator ran with insecure=True and no "
            f"secret) and this worker only accepts signed objectives; set the same {ENV_SECRET} on the "
            "coordinator, or start this worker with --insecure"
        )
    try:
        header = json.loads(body[_HEADER.size:len(body) - len(payload)])
    except ValueError as exc:
        raise ObjectiveError(f"objective blob {digest[:12]} has an unreadable header: {exc}") from exc
    mine = local_versions()
    theirs = {"python": str(header.get("python_full") or header.get("python")),
              "cloudpickle": str(header.get("cloudpickle"))}
    verdict = compare(theirs, mine)
    if not verdict.compatible:
        raise ObjectiveError(
            f"objective {header.get('name')} was pickled with Python {theirs['python']} and cloudpickle "
            f"{theirs['cloudpickle']}, but this worker has Python {mine['python']} and cloudpickle "
            f"{mine['cloudpickle']}; Python and cloudpickle must agree on major.minor: install matching "
            "versions on this worker"
        )
    warn_once(f"objective {header.get('name')} (coordinator vs this worker)", verdict)
    try:
        obj = cloudpickle.loads(payload)
    except Exception as exc:
        hint = ""
        if isinstance(exc, ImportError):
            hint = "; install the missing package on this worker"
        raise ObjectiveError(
            f"cannot unpickle objective {header.get('name')}: {type(exc).__name__}: {exc}{hint}"
        ) from exc
    return header, obj


class ObjectiveCache:
    """Unpickled objectives by digest (and imported ones by path), so a worker unpickles
    an objective once, not once per trial. Bounded, least recently used first out."""

    def __init__(self, size: int = 16) -> None:
        self.size = size
        self._items: collections.OrderedDict[str, Any] = collections.OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str, load: Callable[[], Any]) -> Any:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        value = load()
        with self._lock:
            self._items[key] = value
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return value

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        return len(self._items)
