"""``Study``: the ask/tell seam every executor and the coordinator drive.

A study owns the sampler's view of the search (history arrays and pending rows) and is
the only writer of its trial records. ``ask`` hands out suggestions while earlier ones
are still pending (the sampler sees them); ``tell`` records a result exactly once.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from typing import Any, Mapping, Sequence

import numpy as np

from ..algo.history import History
from ..trial.codec import decode_attachment, to_plain
from ..errors import StudyClosed, TrialError
from ..trial.outcome import interpret
from ..pruners import Pruner, make_pruner
from ..trial.record import TrialRecord, TrialState, finished_record, improves, pruned_at, result_fields, vals_digest
from ..space import CompiledSpace, compile_space, space_eval
from ..space.serialize import space_to_json
from ..storage import Storage, open_storage
from ..trial.names import validate_study_name
from .rows import trials_dataframe
from .settings import Algo, algo_name, as_generator, default_algo
from .snapshot import StudySnapshot
from .transitions import TrialTransitions

#: A study with one of these statuses takes no new trials.
CLOSED_STATUSES = ("done", "cancelled")


@dataclasses.dataclass(frozen=True)
class Trial:
    """A suggestion handed out by ``ask``: ``params`` is what the objective receives."""

    tid: int
    vals: Mapping[str, Any]
    params: Any
    attempt: int = 0


class Study(TrialTransitions):
    """A search over ``space``; results may come from anywhere (ask/tell)."""

    def __init__(
        self,
        space: Any,
        algo: Algo | None = None,
        seed: Any = None,
        storage: Storage | str | None = None,
        name: str | None = None,
        meta: Mapping[str, Any] | None = None,
        pruner: Pruner | str | Mapping[str, Any] | None = None,
    ) -> None:
        self.space = space
        self.compiled: CompiledSpace = compile_space(space)
        self.algo: Algo = algo if algo is not None else default_algo()
        self.rng = as_generator(seed)
        self.storage: Storage = open_storage(storage)
        self.name = validate_study_name(name) if name is not None else f"study-{uuid.uuid4().hex[:12]}"
        self.history = History(self.compiled)
        self._records: dict[int, TrialRecord] = {}
        self._pending: dict[int, np.ndarray] = {}
        self._lost: set[int] = set()  # LOST: not pending for the sampler, but not ended either
        self._fixed: list[dict[str, Any]] = []
        self._best: TrialRecord | None = None
        #: In-process results as the objective returned them (hyperopt's trial documents
        #: hold these; the storage holds the JSON-able form), and hyperopt's attachments
        #: ("ATTACH::<tid>::<name>" -> value). Both live in this process only.
        self.raw_results: dict[int, dict[str, Any]] = {}
        self.attachments: dict[str, Any] = {}
        base_meta = {
            "space": space_to_json(space),
            "labels": self.compiled.labels,
            "algo": algo_name(self.algo),
            "status": "created",
            "created": time.time(),
            "incarnation": uuid.uuid4().hex,
        }
        self.pruner: Pruner = make_pruner(pruner)
        if pruner is not None:
            base_meta["pruner"] = self.pruner.to_json()
        base_meta.update(meta or {})
        self._closed = False  # the study ended: check before adding trials to it
        if not self.storage.create_study(self.name, base_meta):
            stored = self.storage.get_study(self.name)
            self._closed = stored.get("status") in CLOSED_STATUSES
            if pruner is None and stored.get("pruner") is not None:
                self.pruner = make_pruner(stored["pruner"])  # a resumed study keeps the pruner it was created with
            elif pruner is not None and stored.get("pruner") != self.pruner.to_json():
                self.storage.update_study(self.name, {"pruner": self.pruner.to_json()})
            self._load()
        #: Which life of the study this is: messages from a study of the same name that
        #: Redis lost (or that was deleted) name another one, and are dropped.
        self.incarnation: str | None = self.storage.get_study(self.name).get("incarnation")

    # -- loading -------------------------------------------------------------------
    def _load(self) -> None:
        """Rebuild the arrays from stored records (resume after a restart)."""
        for rec in self.storage.get_trials(self.name):
            self._cache(rec)

    def reload(self) -> None:
        """Forget this process's view and read the study again from storage: a coordinator
        does it once it holds the lease, since another one may have advanced the study
        between this object's creation and then (enqueued points are kept)."""
        self.history = History(self.compiled)
        self._records, self._pending, self._lost, self._best = {}, {}, set(), None
        self._load()

    def _cache(self, rec: TrialRecord, history_vals: Mapping[str, Any] | None = None) -> None:
        old = self._records.get(rec.tid)
        self._records[rec.tid] = rec
        if rec.state.pending:
            self._pending[rec.tid] = self.history.encode(rec.vals)
        else:
            self._pending.pop(rec.tid, None)
        if rec.state == TrialState.LOST:
            self._lost.add(rec.tid)
        else:
            self._lost.discard(rec.tid)
        if rec.state.finished and (old is None or not old.state.finished):
            vals = rec.vals if history_vals is None else history_vals
            if rec.state == TrialState.PRUNED:
                self.history.add_pruned(vals, *pruned_at(rec))
            else:
                self.history.add(vals, rec.loss if rec.state == TrialState.OK else None)
            if improves(rec, self._best):
                self._best = rec

    def restore(self, records: Sequence[TrialRecord], foreign: bool = False) -> None:
        """Load records saved elsewhere (an unpickled ``Trials``) into a new study.

        ``foreign``: they were evaluated over another space (``fmin`` called again with a
        new space on the same ``Trials``); the sampler sees only their values that fit
        this space, while they still count as evaluations, as in hyperopt."""
        if records:
            self.storage.next_tid(self.name, max(r.tid for r in records) + 1)
        for rec in records:
            self.storage.put_trial(self.name, rec)
            self._cache(rec, self.fitting_vals(rec.vals) if foreign else None)

    def fitting_vals(self, vals: Mapping[str, Any]) -> dict[str, Any]:
        """The part of an assignment that lies inside this study's space."""
        return {k: v for k, v in vals.items() if k in self.compiled and self.compiled[k].admits(v)}

    # -- asking --------------------------------------------------------------------
    def enqueue(self, vals: Mapping[str, Any]) -> None:
        """Evaluate ``vals`` ({label: value}, choice values as indices) before sampling."""
        self._fixed.append(self._checked_point(vals))

    def _checked_point(self, vals: Mapping[str, Any]) -> dict[str, Any]:
        vals = {k: (v[0] if isinstance(v, (list, tuple)) else v) for k, v in vals.items()}
        missing = [p.label for p in self.compiled if p.is_active(vals) and p.label not in vals]
        unknown = [k for k in vals if k not in self.compiled]
        if missing or unknown:
            raise TrialError(
                f"point {dict(vals)!r} does not fit the space: missing {missing}, unknown {unknown}; "
                f"the space's labels are {self.compiled.labels}"
            )
        return vals

    def pending_array(self) -> np.ndarray:
        if not self._pending:
            return np.empty((0, len(self.compiled)))
        return np.vstack(list(self._pending.values()))

    def suggest(self, n: int) -> list[dict[str, Any]]:
        """``n`` assignments: enqueued points first, then the sampler's."""
        fixed, self._fixed = self._fixed[:n], self._fixed[n:]
        rest = n - len(fixed)
        if rest <= 0:
            return fixed
        pending = self.pending_array()
        if fixed:
            pending = np.vstack([pending, self.history.encode_many(fixed)])
        return fixed + list(self.algo(self.compiled, self.history, pending, rest, self.rng))

    def ask(self, n: int | None = None) -> Trial | list[Trial]:
        """One trial (``n`` None) or a list of ``n``; each stays pending until told.
        Raises ``StudyClosed`` on a study that is done or cancelled."""
        count = 1 if n is None else int(n)
        if count < 1:
            raise TrialError(f"ask(n) needs n >= 1, got {n!r}")
        self._check_open()  # before the sampler runs: nothing is drawn or stored
        trials = [self.trial_for(rec) for rec in self._create(self.suggest(count))]
        return trials[0] if n is None else trials

    def _check_open(self) -> None:
        """Refuse new trials in a study that ended; a run that continues it first marks
        it running again (one read of its meta, only while it looked ended)."""
        if not self._closed:
            return
        status = self.storage.get_study(self.name).get("status")
        if status not in CLOSED_STATUSES:
            self._closed = False
            return
        raise StudyClosed(
            f"study {self.name!r} is {status} ({self.n_finished} trials finished): it takes no new trials, and "
            f"none was added. Read it with distopt.load_study(url, {self.name!r}); to continue it, run it again "
            f"with a larger budget: fmin(..., max_evals=MORE, trials=RedisTrials(url, exp_key={self.name!r})) or "
            f"`distopt run STUDY_FILE --redis URL --study {self.name} --max-evals MORE`"
        )

    def _create(self, suggestions: Sequence[Mapping[str, Any]]) -> list[TrialRecord]:
        """Store new QUEUED records for ``suggestions`` under fresh trial ids."""
        self._check_open()
        now = time.time()
        plain = [to_plain(dict(vals)) for vals in suggestions]

        def build(first: int) -> list[TrialRecord]:
            return [TrialRecord(tid=first + i, vals=vals, book_time=now, refresh_time=now)
                    for i, vals in enumerate(plain)]

        add = getattr(self.storage, "add_trials", None)
        if add is not None:  # ids reserved and records stored in one round trip
            records = add(self.name, len(plain), build)
        else:
            records = build(self.storage.next_tid(self.name, len(plain)))
            self.storage.put_trials(self.name, records)  # one round trip for the batch where it can
        for rec in records:
            self._cache(rec)
        return records

    def trial_for(self, rec: TrialRecord) -> Trial:
        return Trial(rec.tid, rec.vals, space_eval(self.space, rec.vals), rec.attempt)

    # -- telling -------------------------------------------------------------------
    def tell(self, trial: Trial | int, value: Any) -> TrialRecord:
        """Record a result (a float, or a dict with 'loss'/'status') for a pending trial."""
        tid = trial.tid if isinstance(trial, Trial) else int(trial)
        out = interpret(value, warn=False)
        msg = out.message(tid, None, raw_result=out.raw, attachments=out.attachments)
        (rec,) = self.record_results([result_fields(msg)])
        if rec is None:
            state = self._records[tid].state.value if tid in self._records else "unknown"
            raise TrialError(f"trial {tid} cannot take a result: it is {state}")
        return rec

    def report(self, trial: Trial | int, step: int, value: float) -> bool:
        """Record an intermediate value of a pending trial (ask/tell); True when the
        study's pruner says stop it (then ``tell_pruned``)."""
        from ..trial.reporting import Reporter

        tid = trial.tid if isinstance(trial, Trial) else int(trial)
        rec = self.record(tid)
        return Reporter(self.storage, self.name, tid, rec.attempt, self.pruner).report(step, value)

    def tell_pruned(self, trial: Trial | int) -> TrialRecord:
        """End a pending trial as PRUNED with the last value it reported (ask/tell)."""
        tid = trial.tid if isinstance(trial, Trial) else int(trial)
        curve = self.storage.curves(self.name).get(tid)
        step = curve.steps[-1] if curve is not None and curve.steps else None
        value = curve.values[-1] if curve is not None and curve.values else None
        msg = {"tid": tid, "attempt": None, "status": "pruned", "last_step": step, "last_value": to_plain(value)}
        (rec,) = self.record_results([result_fields(msg)])
        if rec is None:
            state = self._records[tid].state.value if tid in self._records else "unknown"
            raise TrialError(f"trial {tid} cannot be pruned: it is {state}")
        return rec

    def record_result(
        self,
        tid: int,
        attempt: int | None,
        ok: bool,
        loss: float | None,
        result: Mapping[str, Any],
        error: str | None = None,
        *,
        worker: str | None = None,
        start_time: float | None = None,
        end_time: float | None = None,
    ) -> TrialRecord | None:
        """Record a result at most once per trial; returns None when the trial already
        ended (a duplicate or late result) or is unknown, so it is never double counted."""
        return self.record_results([{
            "tid": tid, "attempt": attempt, "ok": ok, "loss": loss, "result": result, "error": error,
            "worker": worker, "start_time": start_time, "end_time": end_time,
        }])[0]

    def record_results(self, results: Sequence[Mapping[str, Any]]) -> list[TrialRecord | None]:
        """``record_result`` for a batch, each a dict of its arguments (``tid``, ``attempt``,
        ``ok``, ``loss``, ``result``, ``error``, ``worker``, ``start_time``, ``end_time``, and
        optionally ``reported``, ``raw_result`` and ``attachments``), stored in one round trip
        where the storage can; None for an ignored result, as ``record_result`` returns. A
        second result for a trial in the same batch is ignored. ``raw_result`` (the returned
        dict, in-process) and ``attachments`` stay in this process (``raw_results``,
        ``attachments``); the storage gets the JSON-able ``result``."""
        now = time.time()
        out: list[TrialRecord | None] = [None] * len(results)
        changes, slots, seen = [], [], set()
        for i, r in enumerate(results):
            tid = int(r["tid"])
            old = self._records.get(tid)
            if old is None or old.state.ended or tid in seen:
                continue
            seen.add(tid)
            new = finished_record(old, r, now)
            changes.append((tid, old.state, new, None))
            slots.append(i)
        for i, (_, _, new, _), won in zip(slots, changes, self.storage.transition_many(self.name, changes)):
            if won or self._landed(new):
                self._cache(new)
                out[i] = new
                self._keep_local(results[i], new.tid)
        return out

    def foreign(self, msg: Mapping[str, Any]) -> str | None:
        """Why a worker's message must not touch this study (None when it may): it names
        another incarnation of the study, or parameters other than its trial's."""
        incarnation = msg.get("incarnation")
        if incarnation is not None and self.incarnation is not None and incarnation != self.incarnation:
            return f"it belongs to another incarnation of study {self.name!r} ({str(incarnation)[:12]})"
        rec = self._records.get(int(msg["tid"]))
        digest = msg.get("params")
        if rec is not None and digest is not None and digest != vals_digest(rec.vals):
            return f"it evaluated other parameters than trial {rec.tid}'s"
        return None

    def _keep_local(self, r: Mapping[str, Any], tid: int) -> None:
        """Keep a recorded result's raw dict and attachments (hyperopt's Ctrl.attachments);
        attachments from a worker (JSON, bytes encoded) are also stored with the study,
        so any process reads them (``Trials.trial_attachments``)."""
        raw = r.get("raw_result")
        if raw is not None:
            self.raw_results[tid] = raw
        elif r.get("attachments"):
            self.storage.put_attachments(self.name, tid, r["attachments"])
        for name, value in (r.get("attachments") or {}).items():
            self.attachments[f"ATTACH::{tid}::{name}"] = decode_attachment(value)

    def add_trial(self, vals: Mapping[str, Any], loss: float | Mapping[str, Any]) -> TrialRecord:
        """Record a point evaluated elsewhere (warm start), ``vals`` as ``points_to_evaluate``."""
        (rec,) = self._create([self._checked_point(vals)])
        return self.tell(rec.tid, loss)

    # -- reading -------------------------------------------------------------------
    @property
    def trials(self) -> list[TrialRecord]:
        return [self._records[t] for t in sorted(self._records)]

    def record(self, tid: int) -> TrialRecord:
        try:
            return self._records[tid]
        except KeyError:
            raise TrialError(f"study {self.name!r} has no trial {tid}") from None

    @property
    def best_trial(self) -> TrialRecord | None:
        return self._best

    @property
    def best_params(self) -> Any:
        return None if self._best is None else space_eval(self.space, self._best.vals)

    @property
    def n_finished(self) -> int:
        return self.history.n

    @property
    def n_pending(self) -> int:
        return len(self._pending)

    @property
    def n_lost(self) -> int:
        """LOST trials: each will run again or FAIL, so each still counts against the budget."""
        return len(self._lost)

    @property
    def n_pruned(self) -> int:
        return self.history.n_pruned

    def curves(self) -> dict[int, Any]:
        """Every trial's intermediate values (``CurveData`` by tid)."""
        return self.storage.curves(self.name)

    def pending_tids(self) -> list[int]:
        return sorted(self._pending)

    def lost_tids(self) -> list[int]:
        return sorted(self._lost)

    def states(self, states: Sequence[TrialState]) -> list[TrialRecord]:
        return [r for r in self.trials if r.state in states]

    def snapshot(self) -> StudySnapshot:
        """A read-only picture of the study as it is now."""
        return StudySnapshot(self.name, tuple(self.trials), tuple(self.compiled.labels), self.space, self.compiled,
                             curves=self.curves())

    def to_dataframe(self, indices: bool = False) -> Any:
        """One row per trial, a choice as the option chosen (its index with ``indices``;
        needs pandas: ``pip install distopt[pandas]``)."""
        return trials_dataframe(self.snapshot(), indices)
