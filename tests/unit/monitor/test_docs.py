"""The status schema page and the example script stay in step with the code."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

from distopt import status
from distopt.trial.record import TrialRecord, TrialState
from distopt.storage import RedisStorage

ROOT = Path(__file__).resolve().parents[3]


def _doc(fake_redis):
    storage = RedisStorage(fake_redis)
    storage.create_study("s", {"space": None, "labels": ["x"], "status": "running", "max_evals": 3})
    storage.put_trial("s", TrialRecord(0, {"x": 1.0}, TrialState.OK, loss=1.0, book_time=1.0, end_time=2.0))
    storage.put_trial("s", TrialRecord(1, {"x": 2.0}, TrialState.RUNNING, start_time=1.0, worker="h:1"))
    storage.acquire_lease("s", "h:2:c", 60)
    return status(fake_redis, now=100.0)


def test_every_field_is_documented(fake_redis):
    page = (ROOT / "docs" / "status-schema.md").read_text()
    documented = set(re.findall(r"`([a-z_]+)`", page))
    doc = _doc(fake_redis)
    study = doc["studies"]["s"]
    fields = set(doc) | set(study) | set(study["counts"]) | set(study["states"]) | set(study["best"]) | \
        set(study["stale"][0])
    assert fields - documented == set()


def test_monitor_script_summarizes_a_status(fake_redis):
    spec = importlib.util.spec_from_file_location("monitor_queue", ROOT / "scripts" / "monitor_queue.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    lines = module.summary(_doc(fake_redis))
    assert lines == ["study s: running, 0 queued, 1 running, 1 ok, 0 failed, best 1, 1 stale"]
