"""A result too large FAILs with the sizes; an ended study's inbox stays empty; workers and
coordinators run as a Redis ACL user limited to distopt's and rq's keys and channels."""

from __future__ import annotations

from distopt import fmin, hp, rand
from distopt.trial.record import TrialState
from distopt.storage.redis.server import RedisServer
from distopt.redis_trials import RedisTrials
from distopt.storage import RedisStorage
from distopt.worker.pool import WorkerPool

SECRET = b"limits-secret"


def bulky(x):
    return {"loss": x, "status": "ok", "blob": "z" * (x > 0.5) * 20_000}


def test_a_result_over_the_size_limit_fails_naming_the_sizes(redis_url, monkeypatch):
    monkeypatch.setenv("DISTOPT_MAX_RESULT_BYTES", "4096")
    with WorkerPool(redis_url, 1, secret=SECRET):
        trials = RedisTrials(redis_url, exp_key="bulky", secret=SECRET)
        fmin(bulky, hp.uniform("x", 0, 1), points_to_evaluate=[{"x": 0.2}, {"x": 0.9}], max_evals=2, trials=trials,
             parallelism=1, timeout=60, show_progressbar=False)
    small, big = RedisStorage(redis_url).get_trials("bulky")
    assert small.state == TrialState.OK
    assert big.state == TrialState.FAIL and big.attempt == 0
    assert "bytes as JSON, over the limit of 4,096 bytes" in big.error
    assert "DISTOPT_MAX_RESULT_BYTES" in big.error


def square(x):
    return x * x


def test_a_done_study_takes_no_more_messages(redis_url):
    with WorkerPool(redis_url, 1, secret=SECRET):
        trials = RedisTrials(redis_url, exp_key="ended", secret=SECRET)
        fmin(square, hp.uniform("x", 0, 1), algo=rand.suggest, max_evals=3, trials=trials, timeout=60,
             show_progressbar=False)
    storage = RedisStorage(redis_url)
    storage.push_result("ended", {"tid": 0, "attempt": 5, "status": "ok", "loss": 1.0})  # a late straggler
    assert storage.get_study("ended")["status"] == "done"
    assert storage.client.llen(storage.keys.inbox("ended")) == 0


def test_an_acl_user_limited_to_distopt_and_rq(tmp_path):
    """What docs/distributed.md asks of an ACL user: keys ~distopt:* and ~rq:*, and the
    channel &rq:pubsub:* (rq's worker command channel)."""
    with RedisServer(password="admin-pw", dir=tmp_path) as server:
        admin = server.client()
        admin.acl_setuser("optimizer", enabled=True, passwords=["+opt-pw"], keys=["distopt:*", "rq:*"],
                          channels=["rq:pubsub:*"], reset_channels=True,
                          commands=["+@all", "-@admin"])
        admin.set("other:secret", "not yours")
        url = f"redis://optimizer:opt-pw@{server.host}:{server.port}/0"
        with WorkerPool(url, 2, secret=SECRET):
            trials = RedisTrials(url, exp_key="acl", secret=SECRET)
            fmin(square, hp.uniform("x", 0, 1), algo=rand.suggest, max_evals=8, trials=trials, parallelism=2,
                 timeout=60, show_progressbar=False)
        done = RedisStorage(url).get_trials("acl")
        assert len(done) == 8 and all(r.state == TrialState.OK for r in done)
        assert admin.get("other:secret") == b"not yours"
        admin.close()
