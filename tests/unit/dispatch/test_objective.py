"""Shipping the objective: signing, verification, versions, by-value pickling, secrets."""

import hashlib
import sys
import textwrap
import threading

import cloudpickle
import numpy
import pytest

import distopt
from distopt import hp
from distopt.dispatch import secret as secret_rule
from distopt.errors import DistoptError, ObjectiveError
from distopt.dispatch import objective as obj


SPACE = hp.uniform("x", 0, 1)


def square(x):
    return x * x


def test_pack_and_unpack_round_trip():
    ref, blob = obj.pickle_objective(square, SPACE, secret=b"k")
    assert ref.digest == hashlib.sha256(blob).hexdigest()
    header, loaded = obj.unpack(blob, ref.digest, secret=b"k", insecure=False)
    assert loaded["fn"](3) == 9
    assert header["python"] == obj.python_version()
    assert header["cloudpickle"] == cloudpickle.__version__
    assert header["signed"] is True


def _resigned_digest(blob: bytes) -> str:
    return hashlib.sha256(blob).hexdigest()


def test_altered_blob_is_refused_before_unpickling():
    ref, blob = obj.pickle_objective(square, SPACE, secret=b"k")
    tampered = blob[:-1] + bytes([blob[-1] ^ 1])
    with pytest.raises(ObjectiveError, match="altered"):
        obj.unpack(tampered, ref.digest, secret=b"k", insecure=False)
    # an attacker who also fixes the digest still cannot forge the signature
    with pytest.raises(ObjectiveError, match="does not verify"):
        obj.unpack(tampered, _resigned_digest(tampered), secret=b"k", insecure=False)


def test_blob_signed_with_another_secret_is_refused():
    ref, blob = obj.pickle_objective(square, SPACE, secret=b"theirs")
    with pytest.raises(ObjectiveError, match="different secret"):
        obj.unpack(blob, ref.digest, secret=b"mine", insecure=False)


def test_unsigned_blob_needs_an_insecure_worker():
    ref, blob = obj.pickle_objective(square, SPACE, secret=None)
    with pytest.raises(ObjectiveError, match="unsigned"):
        obj.unpack(blob, ref.digest, secret=b"mine", insecure=False)
    _, loaded = obj.unpack(blob, ref.digest, secret=None, insecure=True)
    assert loaded["fn"](2) == 4


def test_signed_blob_without_a_worker_secret_is_refused_unless_insecure():
    ref, blob = obj.pickle_objective(square, SPACE, secret=b"k")
    with pytest.raises(ObjectiveError, match="no secret"):
        obj.unpack(blob, ref.digest, secret=None, insecure=False)
    obj.unpack(blob, ref.digest, secret=None, insecure=True)


def test_version_mismatch_is_refused(monkeypatch):
    monkeypatch.setattr(obj, "python_version", lambda: "2.7")
    monkeypatch.setattr(obj.platform, "python_version", lambda: "2.7.18")
    ref, blob = obj.pickle_objective(square, SPACE, secret=b"k")
    monkeypatch.undo()
    with pytest.raises(ObjectiveError, match=r"Python 2\.7\.18 .*must agree on major\.minor"):
        obj.unpack(blob, ref.digest, secret=b"k", insecure=False)


def test_a_cloudpickle_patch_difference_loads_and_warns_once(monkeypatch, caplog):
    major, minor, *_ = obj.cloudpickle.__version__.split(".")
    monkeypatch.setattr(obj.cloudpickle, "__version__", f"{major}.{minor}.999")
    ref, blob = obj.pickle_objective(square, SPACE, secret=b"k")
    monkeypatch.undo()
    with caplog.at_level("WARNING"):
        for _ in range(3):
            _, loaded = obj.unpack(blob, ref.digest, secret=b"k", insecure=False)
    assert loaded["fn"](3) == 9
    warned = [r.getMessage() for r in caplog.records if "patch version only" in r.getMessage()]
    assert len(warned) == 1 and f"cloudpickle {major}.{minor}.999 vs" in warned[0]


def test_a_cloudpickle_minor_difference_is_refused(monkeypatch):
    major, minor, *_ = obj.cloudpickle.__version__.split(".")
    monkeypatch.setattr(obj.cloudpickle, "__version__", f"{major}.{int(minor) + 1}.0")
    ref, blob = obj.pickle_objective(square, SPACE, secret=b"k")
    monkeypatch.undo()
    with pytest.raises(ObjectiveError, match=rf"cloudpickle {major}\.{int(minor) + 1}\.0, but this worker"):
        obj.unpack(blob, ref.digest, secret=b"k", insecure=False)


def test_unpicklable_objective_fails_fast_naming_it():
    lock = threading.Lock()

    def locked(x):
        with lock:
            return x

    with pytest.raises(ObjectiveError, match=r"locked.*cannot be sent to workers.*lock"):
        obj.pickle_objective(locked, SPACE, secret=b"k")


def test_user_module_is_pickled_by_value(tmp_path, monkeypatch):
    (tmp_path / "my_objectives.py").write_text(textwrap.dedent("""
        OFFSET = 5
        def shifted(x):
            return x + OFFSET
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    import my_objectives

    try:
        assert obj._is_user_module("my_objectives", my_objectives)
        assert not obj._is_user_module("numpy", numpy)
        assert not obj._is_user_module("distopt", distopt)
        ref, blob = obj.pickle_objective(my_objectives.shifted, SPACE, secret=b"k")
        del sys.modules["my_objectives"]  # a worker without the module still loads it
        monkeypatch.syspath_prepend("/nonexistent")
        sys.path.remove(str(tmp_path))
        _, loaded = obj.unpack(blob, ref.digest, secret=b"k", insecure=False)
        assert loaded["fn"](1) == 6
    finally:
        sys.modules.pop("my_objectives", None)
    assert "my_objectives" not in getattr(cloudpickle.cloudpickle, "_PICKLE_BY_VALUE_MODULES", set())


def test_resolve_secret_order_and_refusal(tmp_path, monkeypatch):
    monkeypatch.delenv(obj.ENV_SECRET, raising=False)
    with pytest.raises(DistoptError, match="DISTOPT_SECRET.*--secret-file.*--insecure"):
        secret_rule.resolve_secret()
    assert secret_rule.resolve_secret(insecure=True) is None
    monkeypatch.setenv(obj.ENV_SECRET, "from-env")
    assert secret_rule.resolve_secret() == b"from-env"
    f = tmp_path / "secret"
    f.write_text("from-file\n")
    assert secret_rule.resolve_secret(secret_file=str(f)) == b"from-file"
    assert secret_rule.resolve_secret("explicit", secret_file=str(f)) == b"explicit"
    f.write_text("  \n")
    with pytest.raises(DistoptError, match="empty"):
        secret_rule.resolve_secret(secret_file=str(f))
    with pytest.raises(DistoptError, match="cannot read"):
        secret_rule.resolve_secret(secret_file=str(tmp_path / "missing"))


def test_import_paths():
    assert obj.import_objective("math:sqrt")(4.0) == 2.0
    assert obj.import_objective("os.path:join")("a", "b") == "a/b"
    with pytest.raises(ObjectiveError, match="not an import path"):
        obj.import_objective("math.sqrt")
    with pytest.raises(ObjectiveError, match="cannot import"):
        obj.import_objective("no_such_module_xyz:f")
    with pytest.raises(ObjectiveError, match="no attribute"):
        obj.import_objective("math:nope")


def test_cache_loads_once_per_key():
    cache = obj.ObjectiveCache(size=2)
    calls = []

    def load(v):
        calls.append(v)
        return v

    assert cache.get("a", lambda: load(1)) == 1
    assert cache.get("a", lambda: load(2)) == 1
    cache.get("b", lambda: load(3))
    cache.get("c", lambda: load(4))  # evicts "a"
    assert cache.get("a", lambda: load(5)) == 5
    assert calls == [1, 3, 4, 5]
    with pytest.raises(RuntimeError):
        cache.get("d", lambda: (_ for _ in ()).throw(RuntimeError("x")))
    assert cache.get("d", lambda: 6) == 6  # failures are not cached


@pytest.mark.parametrize("value", ["change-me-to-another-long-random-string", "CHANGE-ME"])
def test_the_placeholder_secret_of_env_example_is_refused(monkeypatch, value):
    monkeypatch.setenv("DISTOPT_SECRET", value)
    with pytest.raises(DistoptError, match=r"still the placeholder .* from \.env\.example.*token_hex"):
        secret_rule.resolve_secret()


def test_the_placeholder_redis_password_of_env_example_is_refused():
    from distopt.storage import RedisStorage

    with pytest.raises(DistoptError, match=r"password in Redis URL .* still the placeholder"):
        RedisStorage("redis://:change-me-to-a-long-random-string@localhost:6379/0")


def test_every_placeholder_in_env_example_is_refused():
    from pathlib import Path

    from distopt.trial.names import PLACEHOLDER_PREFIX

    text = (Path(__file__).resolve().parents[3] / ".env.example").read_text()
    secrets = [line.split("=", 1)[1] for line in text.splitlines()
               if line.split("=", 1)[0] in ("REDIS_PASSWORD", "DISTOPT_SECRET")]
    assert len(secrets) == 2 and all(s.startswith(PLACEHOLDER_PREFIX) for s in secrets)
