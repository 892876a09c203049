"""Messages from workers are signed; a coordinator acts only on what a worker holding its
secret sent."""

import logging
import math

import pytest

from distopt.dispatch.jobs import payload_signature
from distopt.dispatch.signing import SIG, screen, sign_message, unverified_because
from distopt.trial import codec

SECRET = b"the-secret"


def result(**over):
    msg = {"tid": 3, "attempt": 0, "status": "ok", "loss": 0.125, "result": {"status": "ok", "loss": 0.125},
           "worker": "host:1", "start_time": 1.5, "end_time": 2.25, "incarnation": "inc", "params": "digest"}
    return {**msg, **over}


def through_redis(msg):
    """What the coordinator pops: the inbox stores the codec's JSON."""
    return codec.loads(codec.dumps(msg))


def test_a_signed_message_verifies_after_the_inbox_round_trip_and_loses_its_signature():
    odd = result(loss=float("nan"), result={"status": "ok", "loss": 1e-300, "names": ("é", "\u2603"),
                                            "nested": {"1": [1, 2.5, None, True]}, "big": 2 ** 70})
    popped = through_redis(sign_message(odd, SECRET))
    assert unverified_because(popped, SECRET) is None
    (out,) = screen([popped], SECRET, set())
    assert SIG not in out and out["loss"] == "nan" and out["result"]["big"] == 2 ** 70


def test_a_copied_result_with_a_forged_loss_is_not_recorded_and_the_trial_runs_again():
    genuine = through_redis(sign_message(result(), SECRET))
    forged = {**genuine, "loss": -100.0, "result": {"status": "ok", "loss": -100.0}}
    assert "does not verify" in unverified_because(forged, SECRET)
    (out,) = screen([forged], SECRET, set())
    assert out["type"] == "unloadable" and (out["tid"], out["attempt"]) == (3, 0)
    assert out["incarnation"] == "inc" and out["params"] == "digest"  # still checked against the trial
    assert "not signed with this coordinator's secret" in out["reason"] and "-100" not in str(out)


@pytest.mark.parametrize("sig", [None, 17, "0" * 64])
def test_unsigned_or_badly_signed_results_are_never_results(sig):
    msg = result() if sig is None else {**result(), SIG: sig}
    (out,) = screen([through_redis(msg)], SECRET, set())
    assert out["type"] == "unloadable"
    assert ("unsigned" in out["reason"]) == (not isinstance(sig, str))


def test_a_message_signed_with_another_secret_or_as_a_payload_does_not_verify():
    assert "does not verify" in unverified_because(sign_message(result(), b"other"), SECRET)
    payload_signed = {**result(), SIG: payload_signature(result(), SECRET)}  # another domain: not a message
    assert "does not verify" in unverified_because(payload_signed, SECRET)


def test_unverified_started_and_handback_messages_are_dropped():
    started = {"type": "started", "tid": 1, "attempt": 0, "worker": "w", "start_time": 1.0}
    handback = {"type": "handback", "tid": 2, "attempt": 0, "worker": "w"}
    assert screen([started, sign_message(handback, b"other")], SECRET, set()) == []
    assert len(screen([sign_message(started, SECRET), sign_message(handback, SECRET)], SECRET, set())) == 2


def test_a_refusal_from_a_worker_with_another_secret_reroutes_the_trial_naming_the_refusal():
    refusal = sign_message(result(status="fail", loss=None, error="worker w refused the job: a different secret",
                                  error_kind="objective", refused=True, rq_worker="rq-w"), b"worker-secret")
    (out,) = screen([through_redis(refusal)], SECRET, set())
    assert out["type"] == "unloadable" and out["rq_worker"] == "rq-w"
    assert out["reason"].startswith("worker w refused the job: a different secret")


def test_without_a_secret_everything_passes_unchanged():
    msgs = [result(), {"type": "started", "tid": 1}]
    assert screen(list(msgs), None, set()) == msgs
    assert sign_message(result(), None) == result()


def test_each_kind_of_unverified_message_is_logged_once_per_worker(caplog):
    warned = set()
    with caplog.at_level(logging.WARNING, logger="distopt.dispatch.signing"):
        for loss in (1.0, 2.0, 3.0):
            screen([result(loss=loss)], SECRET, warned)
        screen([result(worker="other:2")], SECRET, warned)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2 and "host:1" in lines[0] and "other:2" in lines[1]
    assert all("not recorded" in line for line in lines)


def test_values_json_cannot_carry_are_not_a_valid_signature():
    assert "JSON cannot carry" in unverified_because({"tid": 1, "x": object(), SIG: "ab"}, SECRET)
    assert math.isnan(float(through_redis(sign_message(result(loss=float("nan")), SECRET))["loss"]))


def test_junk_in_the_inbox_is_dropped_not_a_crash():
    junk = [17, "text", ["a"], {"tid": 1e400, "attempt": 0}, {"tid": "x"}, None]
    assert screen(list(junk), SECRET, set()) == []
    assert screen(list(junk), None, set()) == [{"tid": 1e400, "attempt": 0}, {"tid": "x"}]
