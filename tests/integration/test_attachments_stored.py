"""Attachments returned on workers are stored with the study in Redis: any process reads
them through Trials.trial_attachments; one over the size limit fails its trial, saying so."""

from __future__ import annotations

import pickle

import numpy as np

from distopt import fmin, hp
from distopt.redis_trials import RedisTrials
from distopt.worker.pool import WorkerPool

SECRET = "attach-secret"


def objective(x):
    big = b"z" * (4096 if x > 0.5 else 10)
    return {"loss": x, "status": "ok", "attachments": {"model": pickle.dumps(np.arange(3)), "note": f"x={x:.3f}",
                                                       "big": big}}


def test_worker_attachments_are_read_from_any_process(redis_url, monkeypatch):
    monkeypatch.setenv("DISTOPT_MAX_ATTACHMENT_BYTES", "2048")  # the workers inherit it
    with WorkerPool(redis_url, 2, secret=SECRET.encode(), grace=2.0):
        ran = RedisTrials(redis_url, exp_key="att", secret=SECRET)
        fmin(objective, hp.uniform("x", 0, 1), max_evals=12, trials=ran, parallelism=2, rstate=3,
             show_progressbar=False)
    elsewhere = RedisTrials(redis_url, exp_key="att")  # another reader: nothing of the run in memory
    docs = {d["tid"]: d for d in elsewhere._dynamic_trials}
    small = [d for d in docs.values() if d["misc"]["vals"]["x"][0] <= 0.5]
    large = [d for d in docs.values() if d["misc"]["vals"]["x"][0] > 0.5]
    assert small and large and len(docs) == 12
    for doc in small:
        att = elsewhere.trial_attachments(doc)
        assert sorted(att) == ["big", "model", "note"]
        assert np.array_equal(pickle.loads(att["model"]), np.arange(3)) and att["big"] == b"z" * 10
        assert att["note"] == f"x={doc['misc']['vals']['x'][0]:.3f}"
        assert dict(att) == dict(ran.trial_attachments(doc))  # as the coordinator holds them
    for doc in large:  # over the limit: a failed trial that says why, nothing stored
        rec = elsewhere.study.record(doc["tid"])
        assert rec.state.value == "fail" and "AttachmentsTooLarge" in rec.error and "2048 bytes" in rec.error
        assert dict(elsewhere.trial_attachments(doc)) == {}
