"""Loading a job's objective on the worker: checked against its study, its signature
verified, unpickled or imported once and cached (per digest, per path and study).
Also the storage per rq connection and key prefix, made once."""

from __future__ import annotations

from typing import Any

from ..dispatch.objective import ObjectiveCache, ObjectiveRef, import_objective, unpack, verify_path
from ..errors import ObjectiveError
from ..space.serialize import space_from_json
from ..storage import RedisStorage, Storage
from ..trial.tracebacks import remember
from .guard import settings

_objectives = ObjectiveCache()
_spaces = ObjectiveCache(size=64)
_checked = ObjectiveCache(size=256)  # (prefix, study, objective) triples already checked
_storages: dict[tuple[int, str], tuple[Any, RedisStorage]] = {}


def clear_caches() -> None:
    """Forget every cached objective, space, check and storage."""
    for cache in (_objectives, _spaces, _checked):
        cache.clear()
    _storages.clear()


def storage_for(connection: Any, prefix: str) -> RedisStorage:
    """The storage on rq's connection under ``prefix``, made once per connection."""
    key = (id(connection), prefix)
    cached = _storages.get(key)
    if cached is None or cached[0] is not connection:
        cached = (connection, RedisStorage(connection, prefix=prefix))
        _storages[key] = cached
    return cached[1]


def _load_blob(storage: RedisStorage, ref: ObjectiveRef) -> dict[str, Any]:
    assert ref.digest is not None
    blob = storage.get_blob(ref.digest)
    if blob is None:
        raise ObjectiveError(
            f"objective {ref.name} (blob {ref.digest[:12]}) is not in this Redis; is this worker "
            "connected to the same Redis server and database as the coordinator?"
        )
    current = settings()
    _, obj = unpack(blob, ref.digest, secret=current.secret, insecure=current.insecure)
    remember(obj.get("code"))  # tracebacks name the user's files, not "<dynamic-code>"
    return obj


def _load_space(storage: Storage, study: str) -> Any:
    data = storage.get_study(study).get("space")
    if data is None:
        raise ObjectiveError(
            f"study {study!r} has a space with non-JSON constants, which an import-path objective "
            "cannot receive; pass the objective function itself so the space is shipped with it"
        )
    return space_from_json(data)


def _check_study_objective(storage: Storage, study: str, ref: ObjectiveRef) -> bool:
    """Refuse a job that names an objective its study's coordinator never shipped: a
    signed blob of one study must not run with another study's values."""
    meta = storage.get_study(study)
    shipped = list(meta.get("objectives") or [])
    if not shipped and meta.get("objective"):
        shipped = [ObjectiveRef.from_json(meta["objective"]).key]
    if ref.key not in shipped:
        raise ObjectiveError(
            f"the job names objective {ref.key.partition(':')[2]!r}, which study {study!r} never shipped "
            f"(it runs {', '.join(k.partition(':')[2] for k in shipped) or 'no objective yet'}); refusing to "
            "run it: the job was not enqueued by this study's coordinator"
        )
    return True


def load_objective(storage: RedisStorage, study: str, ref: ObjectiveRef) -> tuple[Any, Any]:
    """(objective, space), cached per digest (per path and study for import paths), once
    the job's objective is the study's and its signature verifies."""
    _checked.get(f"{storage.prefix}|{study}|{ref.digest}|{ref.path}",
                 lambda: _check_study_objective(storage, study, ref))
    if ref.digest is not None:
        obj = _objectives.get(f"digest:{ref.digest}", lambda: _load_blob(storage, ref))
        return obj["fn"], obj["space"]
    if ref.path is not None:
        current = settings()
        path = verify_path(ref, secret=current.secret, insecure=current.insecure)
        fn = _objectives.get(f"path:{path}", lambda: import_objective(path))
        space = _spaces.get(f"{storage.prefix}|{study}", lambda: _load_space(storage, study))
        return fn, space
    raise ObjectiveError(f"the job names no objective (neither a digest nor an import path): {ref!r}")
