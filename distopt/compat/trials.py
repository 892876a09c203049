"""``Trials``: hyperopt's view of a study, so code that reads ``trials.trials``,
``trials.losses()`` or ``trials.idxs_vals`` keeps working.

A ``Trials`` holds a ``Study`` once ``fmin`` attached one; its documents are built from
the study's records on demand and cached per record, so reading them after every result
(as ``early_stop_fn`` does) stays cheap.
"""

from __future__ import annotations

from typing import Any, Iterable, Iterator, Mapping, Sequence

import numpy as np

from .attachments import TrialAttachments
from .documents import flat_vals, pmin_sampled, validate_document
from .record_documents import best_document, job_states, record_from_document, to_plain_doc, trial_document
from .minimize import minimize
from ..errors import AllTrialsFailed, DistoptError
from ..study.settings import Algo, as_generator
from ..study.study import Study
from ..trial.constants import JOB_STATE_NEW, JOB_STATE_RUNNING, STATUS_OK
from ..trial.record import JOB_VALID_STATES, TrialRecord, best_of, with_labels


class Trials:
    """hyperopt's ``Trials``: the record of a search, readable as trial documents.

    As in hyperopt, ``trials``/``results``/``len()`` leave out trials whose objective
    raised (JOB_STATE_ERROR) and cancelled ones; the study (``trials.study``,
    ``to_dataframe``, ``distopt status``) keeps every trial. A pickled ``Trials`` holds its
    records, results and attachments but not the space or the algorithm (hyperopt's
    does not either): the next ``fmin`` call attaches them again.
    """

    # pickles name the public import path, which outlives any move of this module
    __module__ = "distopt.trials"
    asynchronous = False

    def __init__(self, exp_key: str | None = None, refresh: bool = True) -> None:
        self._exp_key = exp_key
        self._study: Study | None = None
        self._points: list[dict[str, Any]] = []
        self._docs: dict[int, tuple[TrialRecord, Any, dict[str, Any]]] = {}
        self._attachments: dict[str, Any] = {}
        self._raw: dict[int, dict[str, Any]] = {}
        self._saved: list[TrialRecord] = []  # records without a study (an unpickled Trials)
        self._saved_labels: list[str] = []
        self._rng_state: Any = None
        self._inserted: list[dict[str, Any]] = []  # documents inserted, shown after refresh()
        self._extra: list[dict[str, Any]] = []  # refreshed documents no study has taken in yet
        self._issued = -1  # the last id new_trial_ids handed out

    # -- attaching a study ---------------------------------------------------------
    @property
    def study(self) -> Study | None:
        return self._study

    def attach(self, space: Any, algo: Algo | None, rstate: Any, pruner: Any = None) -> Study:
        """The study behind these trials; created on first use, reused by later ``fmin``
        calls (which then continue the same search, as in hyperopt). A later call with
        another space gets a study over that space holding the earlier trials (the
        sampler uses the values that fit the new space), as hyperopt uses the new space."""
        study = self._study
        if study is None:
            study = self._new_study(space, algo, rstate, pruner)
            if self._saved:
                study.restore(self._saved, foreign=True)
            if rstate is None and self._rng_state is not None:
                study.rng.bit_generator.state = self._rng_state
            self._saved, self._rng_state = [], None
        elif not _same_space(study.space, space):
            old = study
            study = self._new_study(space, algo if algo is not None else old.algo, rstate,
                                    pruner if pruner is not None else old.pruner)
            if rstate is None:
                study.rng = old.rng
            study.restore([r for r in old.trials if r.state.ended], foreign=True)
        else:
            study.algo = algo if algo is not None else study.algo
            if pruner is not None:
                from ..pruners import make_pruner

                study.pruner = make_pruner(pruner)
            if rstate is not None:
                study.rng = as_generator(rstate)
        study.raw_results = self._raw  # shared: results and attachments outlive a study switch
        study.attachments = self._attachments
        self._study = study
        for point in self._points:
            study.enqueue(point)
        self._points = []
        self._absorb(study)
        return study

    def _absorb(self, study: Study) -> None:
        """Documents inserted by hand (a warm start) join the study: finished ones as
        results the sampler learns from, new ones as points to evaluate first (hyperopt's
        fmin evaluates them too)."""
        if not self._extra:
            return
        used = {r.tid for r in study.trials}
        next_tid = max(used | {-1}) + 1
        records = []
        for doc in self._extra:
            vals = flat_vals(doc)
            if doc["state"] in (JOB_STATE_NEW, JOB_STATE_RUNNING):
                study.enqueue(study.fitting_vals(vals))
                continue
            tid = doc["tid"]
            if not isinstance(tid, int) or isinstance(tid, bool) or tid in used:
                tid = next_tid
            used.add(tid)
            next_tid = max(next_tid, tid + 1)
            records.append(record_from_document(doc, tid))
        study.restore(records, foreign=True)
        self._extra = []

    def _new_study(self, space: Any, algo: Algo | None, rstate: Any, pruner: Any = None) -> Study:
        return Study(space, algo=algo, seed=rstate, pruner=pruner)

    # -- attachments ---------------------------------------------------------------
    @property
    def attachments(self) -> dict[str, Any]:
        """hyperopt's ``Trials.attachments``: every attachment, "ATTACH::<tid>::<name>"."""
        return self._attachments

    @attachments.setter
    def attachments(self, value: dict[str, Any]) -> None:
        self._attachments = value
        if self._study is not None:
            self._study.attachments = value

    def trial_attachments(self, trial: Mapping[str, Any]) -> TrialAttachments:
        """The attachments of one trial document: ``trials.trial_attachments(doc)[name]``."""
        return TrialAttachments(self._attachments, trial["tid"])

    def aname(self, trial: Mapping[str, Any], name: str) -> str:
        return f"ATTACH::{trial['tid']}::{name}"

    # -- hyperopt's surface --------------------------------------------------------
    def _records(self) -> list[TrialRecord]:
        return self._saved if self._study is None else self._study.trials

    def _labels(self) -> list[str]:
        return self._saved_labels if self._study is None else self._study.compiled.labels

    def _all_docs(self) -> list[dict[str, Any]]:
        """Every record's document, ERROR and CANCEL ones too (hyperopt's _dynamic_trials),
        then the refreshed documents inserted by hand."""
        return self._record_docs() + self._extra

    def _record_docs(self) -> list[dict[str, Any]]:
        if self._study is None and not self._saved:
            return [self._point_doc(i, p) for i, p in enumerate(self._points)]
        labels = self._labels()
        docs = []
        for rec in self._records():
            raw = self._raw.get(rec.tid)
            cached = self._docs.get(rec.tid)
            if cached is None or cached[0] is not rec or cached[1] is not raw:
                cached = (rec, raw, trial_document(rec, labels, self._exp_key, raw))
                self._docs[rec.tid] = cached
            docs.append(cached[2])
        return docs

    @property
    def trials(self) -> list[dict[str, Any]]:
        """hyperopt's ``trials.trials``: documents in JOB_VALID_STATES (no ERROR, no CANCEL)."""
        return [d for d in self._all_docs() if d["state"] in JOB_VALID_STATES]

    def _point_doc(self, i: int, point: Mapping[str, Any]) -> dict[str, Any]:
        rec = TrialRecord(tid=i, vals=point)
        return trial_document(rec, sorted(point), self._exp_key)

    @property
    def _trials(self) -> list[dict[str, Any]]:
        return self.trials

    @property
    def _dynamic_trials(self) -> list[dict[str, Any]]:
        return self._all_docs() + self._inserted

    def refresh(self) -> None:
        """Show the documents inserted since the last refresh (the study's own documents
        are always current)."""
        self._extra.extend(self._inserted)
        self._inserted = []

    # -- hyperopt's document API ---------------------------------------------------
    def insert_trial_doc(self, doc: Mapping[str, Any]) -> Any:
        """Add one trial document (``InvalidTrial`` when it lacks a required key); it
        shows after ``refresh()``. Finished documents warm-start the next ``fmin``; new
        ones are evaluated by it."""
        return self.insert_trial_docs([doc])[0]

    def insert_trial_docs(self, docs: Iterable[Mapping[str, Any]]) -> list[Any]:
        checked = [validate_document(to_plain_doc(d), self._exp_key) for d in docs]
        return self._insert_trial_docs(checked)

    def _insert_trial_docs(self, docs: Iterable[Mapping[str, Any]]) -> list[Any]:
        """Insert without checks (hyperopt's name)."""
        docs = [dict(d) for d in docs]
        self._inserted.extend(docs)
        return [d["tid"] for d in docs]

    def new_trial_ids(self, n: int) -> list[int]:
        """``n`` trial ids not used yet."""
        known = [d["tid"] for d in self._all_docs() + self._inserted if isinstance(d["tid"], int)]
        first = max(known + [self._issued]) + 1
        self._issued = first + int(n) - 1
        return list(range(first, first + int(n)))

    def new_trial_docs(self, tids: Sequence[Any], specs: Sequence[Any], results: Sequence[Any],
                       miscs: Sequence[Any]) -> list[dict[str, Any]]:
        """Documents (state NEW) for the given ids, specs, results and miscs."""
        if not len(tids) == len(specs) == len(results) == len(miscs):
            raise DistoptError(f"new_trial_docs needs as many tids, specs, results and miscs, got "
                               f"{len(tids)}, {len(specs)}, {len(results)}, {len(miscs)}")
        return [{"state": JOB_STATE_NEW, "tid": tid, "spec": spec, "result": result, "misc": misc,
                 "exp_key": self._exp_key, "owner": None, "version": 0, "book_time": None, "refresh_time": None}
                for tid, spec, result, misc in zip(tids, specs, results, miscs)]

    def delete_all(self) -> None:
        """Forget every trial (a fresh search on the next ``fmin``)."""
        self.__init__(self._exp_key)

    def view(self, exp_key: str | None = None, refresh: bool = True) -> "Trials":
        return self

    def fmin(self, fn: Any, space: Any, algo: Any = None, max_evals: Any = None, **kwargs: Any) -> Any:
        """``fmin(fn, space, ..., trials=self)``, as hyperopt's method."""
        kwargs.pop("allow_trials_fmin", None)
        return minimize(fn, space, self, algo=algo, max_evals=max_evals, **kwargs)

    def __len__(self) -> int:
        return len(self.trials)

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
        idxs: dict[str, list] = {label: [] for label in self._labels()}
        vals: dict[str, list] = {label: [] for label in self._labels()}
        for doc in self.trials:
            for label, value in doc["misc"]["vals"].items():
                if value:
                    idxs.setdefault(label, []).append(doc["tid"])
                    vals.setdefault(label, []).append(value[0])
        return idxs, vals

    @property
    def idxs(self) -> dict[str, list]:
        return self.idxs_vals[0]

    @property
    def vals(self) -> dict[str, list]:
        return self.idxs_vals[1]

    def losses(self, bandit: Any = None) -> list[float | None]:
        """Each result's 'loss' (also a loss reported with STATUS_FAIL), None without one."""
        return [r.get("loss") for r in self.results]

    def statuses(self, bandit: Any = None) -> list[str]:
        return [r.get("status") for r in self.results]

    def count_by_state_synced(self, arg: int | Iterable[int], trials: Sequence[Mapping] | None = None) -> int:
        """Documents of ``trials`` (default: ``self.trials``) in the given state(s)."""
        states = job_states(arg)
        return sum(1 for d in (self.trials if trials is None else trials) if d["state"] in states)

    def count_by_state_unsynced(self, arg: int | Iterable[int]) -> int:
        """As hyperopt: counts every document, ERROR ones too (not only ``self.trials``)."""
        return self.count_by_state_synced(arg, trials=self._all_docs())

    @property
    def best_trial(self) -> dict[str, Any]:
        """The document of the trial with the lowest loss among successful ones."""
        if self._extra:
            return best_document(self.trials)
        best = self._study.best_trial if self._study is not None else best_of(self._saved)
        if best is None:
            raise AllTrialsFailed("no trial finished with status 'ok', so there is no best trial")
        return trial_document(best, self._labels(), self._exp_key, self._raw.get(best.tid))

    def require_results(self) -> None:
        """What ``fmin(return_argmin=True)`` checks before taking the argmin: hyperopt's
        "no evaluation tasks" error, as AllTrialsFailed naming the first error when trials
        ran but every one raised or failed on its worker (they are left out of ``trials``)."""
        if len(self) > 0:
            return
        failed = [r for r in self._records() if r.state.finished]
        if failed:
            first = (failed[0].error or "no error recorded").splitlines()[0]
            raise AllTrialsFailed(
                f"There are no evaluation tasks, cannot return argmin of task losses: all {len(failed)} "
                f"trials failed without a result (trial {failed[0].tid}: {first}); see trials.study.trials "
                "or `distopt status` for every error")
        raise DistoptError("There are no evaluation tasks, cannot return argmin of task losses.")

    @property
    def argmin(self) -> dict[str, Any]:
        """The best trial's ``{label: value}`` (choice values as indices), as hyperopt."""
        best = self.best_trial
        return {k: v[0] for k, v in best["misc"]["vals"].items() if len(v)}

    def average_best_error(self, bandit: Any = None) -> float:
        """hyperopt's average best error: the true loss of the best trial, or with noisy
        losses ('loss_variance'), the true losses weighted by each trial's probability of
        being the best. ``bandit`` (a ``Domain``) reads the results when given."""
        results = [r for r in self.results if (bandit.status(r) if bandit is not None else r.get("status")) == STATUS_OK]
        if bandit is None:
            rows = [(r["loss"], r.get("loss_variance", 0), r.get("true_loss", r["loss"])) for r in results]
        else:
            rows = [(bandit.loss(r), bandit.loss_variance(r), bandit.true_loss(r)) for r in results]
        table = np.asarray(sorted(rows), dtype=float).reshape(-1, 3)
        if table.size == 0:
            raise AllTrialsFailed("no trial finished with status 'ok', so there is no best error")
        if not np.all(np.isfinite(table)):
            raise DistoptError("average_best_error needs finite losses, variances and true losses")
        if np.all(table[:, 1] == 0):
            return float(table[np.argmin(table[:, 0]), 2])
        sigma = np.sqrt(table[0, 1])
        cutoff = int(np.sum(table[:, 0] < table[0, 0] + 3 * sigma)) or 1
        pmin = pmin_sampled(table[:cutoff, 0], table[:cutoff, 1])
        return float((pmin * table[:cutoff, 2]).sum())

    def to_dataframe(self, indices: bool = False) -> Any:
        """One row per trial, failed ones too, a choice as the option chosen (its index
        with ``indices``; needs pandas: ``pip install distopt[pandas]``)."""
        from ..study.rows import trials_dataframe

        if self._study is None:  # unpickled (or unused): its saved records
            from ..study.snapshot import StudySnapshot

            return trials_dataframe(StudySnapshot("", tuple(self._saved), tuple(self._saved_labels)), indices)
        return trials_dataframe(self._study.snapshot(), indices)

    # -- pickling ------------------------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        """Records, raw results and attachments; never the space or the algorithm (they
        may hold lambdas, and the next ``fmin`` call gives them again)."""
        from ..trial.codec import record_to_dict

        study = self._study
        return {
            "format": 2,
            "exp_key": self._exp_key,
            "points": self._points,
            "records": [record_to_dict(r) for r in self._records()],
            "labels": list(self._labels()),
            "rng": study.rng.bit_generator.state if study is not None else self._rng_state,
            "raw_results": self._raw,
            "attachments": self._attachments,
            "documents": {"inserted": self._inserted, "refreshed": self._extra},
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        from ..trial.codec import record_from_dict

        self.__init__(state["exp_key"])
        self._points = state["points"]
        if state.get("format") != 2:  # written by an earlier distopt: the study inline
            saved = state.get("study") or {"records": [], "rng": None}
            state = {"records": saved["records"], "rng": saved["rng"], "labels": []}
        self._saved = [record_from_dict(d) for d in state["records"]]
        self._saved_labels = with_labels(state.get("labels") or [], self._saved)
        self._rng_state = state.get("rng")
        self._raw = dict(state.get("raw_results") or {})
        self._attachments = dict(state.get("attachments") or {})
        documents = state.get("documents") or {}
        self._inserted = list(documents.get("inserted") or [])
        self._extra = list(documents.get("refreshed") or [])


def _same_space(a: Any, b: Any) -> bool:
    """Whether two spaces are the same search (the same object, or the same JSON form)."""
    if a is b:
        return True
    from ..space.serialize import space_to_json

    try:
        ja, jb = space_to_json(a), space_to_json(b)
    except DistoptError:
        return False
    return ja is not None and ja == jb


def trials_from_docs(docs: Iterable[Mapping[str, Any]], validate: bool = True, **kwargs: Any) -> Trials:
    """A ``Trials`` holding ``docs`` (checked unless ``validate=False``), refreshed."""
    trials = Trials(**kwargs)
    if validate:
        trials.insert_trial_docs(docs)
    else:
        trials._insert_trial_docs(docs)
    trials.refresh()
    return trials


def generate_trials_to_calculate(points: Sequence[Mapping[str, Any]]) -> Trials:
    """A ``Trials`` whose first evaluations will be ``points`` ({label: value}), as hyperopt."""
    trials = Trials()
    trials._points = [dict(p) for p in points]
    return trials
