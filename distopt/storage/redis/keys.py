"""Every Redis key distopt uses, in one place, under one prefix.

Layout (prefix ``distopt:`` by default; ``<s>`` is a validated study name)::

    distopt:studies                   SET    names of all studies (the source of truth)
    distopt:study:<s>:meta            HASH   meta field -> JSON value
    distopt:study:<s>:trials          HASH   tid -> JSON trial record
    distopt:study:<s>:tid             STRING next trial id counter
    distopt:study:<s>:state:<state>   SET    tids currently in <state> (cheap counts)
    distopt:study:<s>:inbox           LIST   JSON result messages from workers
    distopt:study:<s>:hb              ZSET   tid -> heartbeat deadline (epoch seconds)
    distopt:study:<s>:hbinfo          HASH   tid -> JSON {"attempt", "worker"}
    distopt:study:<s>:lease           STRING coordinator id, expiring (PX)
    distopt:study:<s>:curves          HASH   tid -> JSON {"a": attempt, "s": [steps], "v": [values]}
    distopt:study:<s>:curvever        ZSET   tid -> version of its curve (server clock in µs at its last report)
    distopt:study:<s>:generation      STRING "<n>:<coordinator id>" of the lease's current holder (the fence)
    distopt:study:<s>:claimed         LIST   messages taken from the inbox, not yet recorded by a coordinator
    distopt:study:<s>:handout         HASH   token and length of the batch of ``claimed`` last handed out
    distopt:study:<s>:attach          HASH   "<tid>:<name>" -> JSON attachment of a trial
    distopt:study:<s>:attachidx       HASH   tid -> JSON list of its attachment names
    distopt:blob:<digest>             STRING signed objective blob, shared by studies
    distopt:vanished:<s>              STRING incarnation of a study whose data Redis lost (a worker saw it)
    distopt:workers                   ZSET   worker id -> its last beat (epoch seconds)
    distopt:worker:<id>               STRING JSON liveness record of one worker process
                                             (``host:pid``), expiring when it stops beating

Study names never contain ':', so one study's keys can never spell another's.
"""

from __future__ import annotations

from ...trial.names import validate_digest, validate_study_name, validate_worker_id
from ...trial.record import TrialState

from ...defaults import DEFAULT_PREFIX  # noqa: E402


class Keys:
    """Key names under ``prefix``; two prefixes on one Redis never share a key."""

    def __init__(self, prefix: str = DEFAULT_PREFIX) -> None:
        if not isinstance(prefix, str) or not prefix or any(c.isspace() for c in prefix):
            raise ValueError(f"invalid key prefix {prefix!r}: use a non-empty string without spaces, e.g. 'distopt:'")
        self.prefix = prefix

    def __repr__(self) -> str:
        return f"Keys(prefix={self.prefix!r})"

    @property
    def studies(self) -> str:
        return f"{self.prefix}studies"

    @property
    def workers(self) -> str:
        return f"{self.prefix}workers"

    def worker(self, worker: str) -> str:
        return f"{self.prefix}worker:{validate_worker_id(worker)}"

    def vanished(self, study: str) -> str:
        return f"{self.prefix}vanished:{validate_study_name(study)}"

    def blob(self, digest: str) -> str:
        return f"{self.prefix}blob:{validate_digest(digest)}"

    def _study(self, study: str, part: str) -> str:
        return f"{self.prefix}study:{validate_study_name(study)}:{part}"

    def meta(self, study: str) -> str:
        return self._study(study, "meta")

    def trials(self, study: str) -> str:
        return self._study(study, "trials")

    def tid(self, study: str) -> str:
        return self._study(study, "tid")

    def state(self, study: str, state: TrialState) -> str:
        return self._study(study, f"state:{TrialState(state).value}")

    def state_sets(self, study: str) -> list[str]:
        """One set per state, in ``TrialState`` declaration order."""
        return [self.state(study, s) for s in TrialState]

    def inbox(self, study: str) -> str:
        return self._study(study, "inbox")

    def heartbeats(self, study: str) -> str:
        return self._study(study, "hb")

    def heartbeat_info(self, study: str) -> str:
        return self._study(study, "hbinfo")

    def lease(self, study: str) -> str:
        return self._study(study, "lease")

    def curves(self, study: str) -> str:
        """Intermediate values each trial's current attempt reported (workers write)."""
        return self._study(study, "curves")

    def curve_versions(self, study: str) -> str:
        """When each curve last changed, so a pruner's copy fetches only what changed."""
        return self._study(study, "curvever")

    def generation(self, study: str) -> str:
        return self._study(study, "generation")

    def claimed(self, study: str) -> str:
        return self._study(study, "claimed")

    def handout(self, study: str) -> str:
        return self._study(study, "handout")

    def attachments(self, study: str) -> str:
        return self._study(study, "attach")

    def attachment_index(self, study: str) -> str:
        return self._study(study, "attachidx")

    def study_keys(self, study: str) -> list[str]:
        """Every key owned by one study (what ``delete_study`` removes)."""
        return [
            self.meta(study),
            self.trials(study),
            self.tid(study),
            *self.state_sets(study),
            self.inbox(study),
            self.heartbeats(study),
            self.heartbeat_info(study),
            self.lease(study),
            self.curves(study),
            self.curve_versions(study),
            self.generation(study),
            self.claimed(study),
            self.handout(study),
            self.attachments(study),
            self.attachment_index(study),
        ]
