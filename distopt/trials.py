"""``Trials``: hyperopt's view of a study, so code that reads ``trials.trials``,
``trials.losses()`` or ``trials.idxs_vals`` keeps working.

A ``Trials`` holds a ``Study`` once ``fmin`` attached one; its documents are built from
the study's records on demand and cached per record, so reading them after every result
(as ``early_stop_fn`` does) stays cheap.
"""

from __future__ import annotations

import datetime
from typing import Any, Iterator, Mapping, Sequence

import numpy as np

from .constants import STATUS_NEW, STATUS_RUNNING
from .errors import DistoptError
from .records import HYPEROPT_STATE, TrialRecord, TrialState
from .study import Algo, Study


class AllTrialsFailed(DistoptError):
    """No trial reported a usable loss, so there is no best trial."""


def _dt(ts: float | None) -> datetime.datetime | None:
    if ts is None:
        return None
    # hyperopt stores naive datetimes rounded to milliseconds
    dt = datetime.datetime.fromtimestamp(ts, tz=datetime.timezone.utc).replace(tzinfo=None)
    return dt.replace(microsecond=dt.microsecond // 1000 * 1000)


def trial_document(rec: TrialRecord, labels: Sequence[str], exp_key: str | None = None) -> dict[str, Any]:
    """One record as hyperopt's trial document."""
    if rec.state == TrialState.QUEUED or rec.state == TrialState.LOST:
        result: dict[str, Any] = {"status": STATUS_NEW}
    elif rec.state == TrialState.RUNNING:
        result = {"status": STATUS_RUNNING}
    else:
        result = dict(rec.result)
        if rec.state == TrialState.CANCELLED:
            result.setdefault("status", "fail")
    idxs = {label: ([rec.tid] if label in rec.vals else []) for label in labels}
    vals = {label: ([rec.vals[label]] if label in rec.vals else []) for label in labels}
    doc = {
        "state": HYPEROPT_STATE[rec.state],
        "tid": rec.tid,
        "spec": None,
        "result": result,
        "misc": {
            "tid": rec.tid,
            "cmd": ("domain_attachment", "FMinIter_Domain"),
            "workdir": None,
            "idxs": idxs,
            "vals": vals,
        },
        "exp_key": exp_key,
        "owner": rec.worker,
        "version": 0,
        "book_time": _dt(rec.book_time),
        "refresh_time": _dt(rec.refresh_time),
    }
    if rec.error:
        doc["misc"]["error"] = (rec.error.splitlines()[0] if rec.error else None, rec.error)
    return doc


class Trials:
    """hyperopt's ``Trials``: the record of a search, readable as trial documents."""

    asynchronous = False

    def __init__(self, exp_key: str | None = None, refresh: bool = True) -> None:
        self._exp_key = exp_key
        self._study: Study | None = None
        self._points: list[dict[str, Any]] = []
        self._docs: dict[int, tuple[TrialRecord, dict[str, Any]]] = {}

    # -- attaching a study ---------------------------------------------------------
    @property
    def study(self) -> Study | None:
        return self._study

    def attach(self, space: Any, algo: Algo | None, rstate: Any) -> Study:
        """The study behind these trials; created on first use, reused by later ``fmin``
        calls (which then continue the same search, as in hyperopt)."""
        if self._study is None:
            self._study = self._new_study(space, algo, rstate)
        else:
            self._study.algo = algo if algo is not None else self._study.algo
            if rstate is not None:
                from .study import as_generator

                self._study.rng = as_generator(rstate)
        for point in self._points:
            self._study.enqueue(point)
        self._points = []
        return self._study

    def _new_study(self, space: Any, algo: Algo | None, rstate: Any) -> Study:
        return Study(space, algo=algo, seed=rstate)

    # -- hyperopt's surface --------------------------------------------------------
    def _records(self) -> list[TrialRecord]:
        return [] if self._study is None else self._study.trials

    @property
    def trials(self) -> list[dict[str, Any]]:
        if self._study is None:
            return [self._point_doc(i, p) for i, p in enumerate(self._points)]
        labels = self._study.compiled.labels
        docs = []
        for rec in self._study.trials:
            cached = self._docs.get(rec.tid)
            if cached is None or cached[0] is not rec:
                cached = (rec, trial_document(rec, labels, self._exp_key))
                self._docs[rec.tid] = cached
            docs.append(cached[1])
        return docs

    def _point_doc(self, i: int, point: Mapping[str, Any]) -> dict[str, Any]:
        rec = TrialRecord(tid=i, vals=point)
        return trial_document(rec, sorted(point), self._exp_key)

    _trials = trials

    def refresh(self) -> None:
        """Documents are always current; kept for hyperopt compatibility."""

    def __len__(self) -> int:
        return len(self._records()) if self._study is not None else len(self._points)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.trials)

    def __getitem__(self, item: int) -> dict[str, Any]:
        return self.trials[item]

    @property
    def tids(self) -> list[int]:
        return [d["tid"] for d in self.trials]

    @property
    def specs(self) -> list[Any]:
        return [d["spec"] for d in self.trials]

    @property
    def results(self) -> list[dict[str, Any]]:
        return [d["result"] for d in self.trials]

    @property
    def miscs(self) -> list[dict[str, Any]]:
        return [d["misc"] for d in self.trials]

    @property
    def idxs_vals(self) -> tuple[dict[str, list], dict[str, list]]:
        labels = self._study.compiled.labels if self._study is not None else []
        idxs: dict[str, list] = {label: [] for label in labels}
        vals: dict[str, list] = {label: [] for label in labels}
        for rec in self._records():
            for label, value in rec.vals.items():
                idxs[label].append(rec.tid)
                vals[label].append(value)
        return idxs, vals

    @property
    def idxs(self) -> dict[str, list]:
        return self.idxs_vals[0]

    @property
    def vals(self) -> dict[str, list]:
        return self.idxs_vals[1]

    def losses(self, bandit: Any = None) -> list[float | None]:
        return [r.get("loss") if r.get("status") == "ok" else None for r in self.results]

    def statuses(self, bandit: Any = None) -> list[str]:
        return [r.get("status") for r in self.results]

    def count_by_state_unsynced(self, arg: int | Sequence[int]) -> int:
        states = {arg} if isinstance(arg, int) else set(arg)
        return sum(1 for d in self.trials if d["state"] in states)

    count_by_state_synced = count_by_state_unsynced

    @property
    def best_trial(self) -> dict[str, Any]:
        """The document of the trial with the lowest loss among successful ones."""
        best = self._study.best_trial if self._study is not None else None
        if best is None:
            raise AllTrialsFailed("no trial finished with status 'ok', so there is no best trial")
        return trial_document(best, self._study.compiled.labels, self._exp_key)

    @property
    def argmin(self) -> dict[str, Any]:
        """The best trial's ``{label: value}`` (choice values as indices), as hyperopt."""
        best = self.best_trial
        return {k: v[0] for k, v in best["misc"]["vals"].items() if len(v)}

    def average_best_error(self, bandit: Any = None) -> float:
        losses = np.array([l for l in self.losses() if l is not None], dtype=float)
        if losses.size == 0:
            raise AllTrialsFailed("no trial finished with status 'ok'")
        return float(losses.min())

    def to_dataframe(self) -> Any:
        """One row per trial (needs pandas: ``pip install distopt[pandas]``)."""
        from .export import trials_dataframe

        return trials_dataframe(self._study)

    # -- pickling ------------------------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        from .codec import record_to_dict

        study = self._study
        return {
            "exp_key": self._exp_key,
            "points": self._points,
            "study": None if study is None else {
                "space": study.space,
                "algo": study.algo,
                "rng": study.rng.bit_generator.state,
                "records": [record_to_dict(r) for r in study.trials],
            },
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        from .codec import record_from_dict

        self.__init__(state["exp_key"])
        self._points = state["points"]
        saved = state["study"]
        if saved is not None:
            study = Study(saved["space"], algo=saved["algo"])
            study.rng.bit_generator.state = saved["rng"]
            study.restore([record_from_dict(d) for d in saved["records"]])
            self._study = study


def generate_trials_to_calculate(points: Sequence[Mapping[str, Any]]) -> Trials:
    """A ``Trials`` whose first evaluations will be ``points`` ({label: value}), as hyperopt."""
    trials = Trials()
    trials._points = [dict(p) for p in points]
    return trials
