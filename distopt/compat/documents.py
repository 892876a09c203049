"""hyperopt's trial documents: required keys, validation, and the idxs/vals helpers that
hyperopt-style code (suggest functions, warm starts) uses to read and write them."""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from ..errors import InvalidTrial, TrialError

#: Keys every trial document has (hyperopt's ``base.TRIAL_KEYS``).
TRIAL_KEYS = ["tid", "spec", "result", "misc", "state", "owner", "book_time", "refresh_time", "exp_key"]
#: Keys every document's ``misc`` has (hyperopt's ``base.TRIAL_MISC_KEYS``).
TRIAL_MISC_KEYS = ["tid", "cmd", "idxs", "vals"]


def validate_document(doc: Any, exp_key: str | None) -> Mapping[str, Any]:
    """``doc`` if it is a trial document hyperopt would accept, else ``InvalidTrial``."""
    if not isinstance(doc, Mapping):
        raise InvalidTrial(f"a trial document must be a dict, got {type(doc).__name__}: {doc!r}")
    missing = [k for k in TRIAL_KEYS if k not in doc]
    if missing:
        raise InvalidTrial(f"trial document {doc.get('tid')!r} lacks the keys {missing}; a document needs {TRIAL_KEYS}")
    misc = doc["misc"]
    if not isinstance(misc, Mapping):
        raise InvalidTrial(f"trial {doc['tid']!r}: 'misc' must be a dict, got {misc!r}")
    missing = [k for k in TRIAL_MISC_KEYS if k not in misc]
    if missing:
        raise InvalidTrial(f"trial {doc['tid']!r}: misc lacks the keys {missing}; misc needs {TRIAL_MISC_KEYS}")
    if doc["tid"] != misc["tid"]:
        raise InvalidTrial(f"trial document tid {doc['tid']!r} differs from its misc tid {misc['tid']!r}")
    if doc["exp_key"] != exp_key:
        raise InvalidTrial(f"trial {doc['tid']!r} has exp_key {doc['exp_key']!r}; these trials' exp_key is {exp_key!r}")
    return doc


def miscs_update_idxs_vals(
    miscs: Sequence[dict[str, Any]],
    idxs: Mapping[str, Sequence[Any]],
    vals: Mapping[str, Sequence[Any]],
    assert_all_vals_used: bool = True,
    idxs_map: Mapping[Any, Any] | None = None,
) -> Sequence[dict[str, Any]]:
    """Write the column form (``idxs[label]`` tids, ``vals[label]`` values) into the
    miscs, as hyperopt's function of this name does."""
    idxs_map = idxs_map or {}
    if set(idxs) != set(vals):
        raise TrialError(f"idxs and vals must have the same labels, got {sorted(idxs)} and {sorted(vals)}")
    by_tid = {m["tid"]: m for m in miscs}
    for m in miscs:
        m["idxs"] = {key: [] for key in idxs}
        m["vals"] = {key: [] for key in idxs}
    for key in idxs:
        if len(idxs[key]) != len(vals[key]):
            raise TrialError(f"label {key!r}: {len(idxs[key])} tids but {len(vals[key])} values")
        for tid, val in zip(idxs[key], vals[key]):
            tid = idxs_map.get(tid, tid)
            if tid in by_tid:
                by_tid[tid]["idxs"][key] = [tid]
                by_tid[tid]["vals"][key] = [val]
            elif assert_all_vals_used:
                raise TrialError(f"label {key!r} has a value for tid {tid!r}, which no misc has")
    return miscs


def miscs_to_idxs_vals(
    miscs: Sequence[Mapping[str, Any]], keys: Iterable[str] | None = None
) -> tuple[dict[str, list], dict[str, list]]:
    """The column form of the miscs: ``idxs[label]`` the tids where the label is active,
    ``vals[label]`` its values."""
    if keys is None:
        if len(miscs) == 0:
            raise TrialError("cannot infer the labels from an empty list of miscs; pass keys=")
        keys = list(miscs[0]["idxs"].keys())
    idxs: dict[str, list] = {k: [] for k in keys}
    vals: dict[str, list] = {k: [] for k in keys}
    for misc in miscs:
        for key in idxs:
            t_idxs, t_vals = misc["idxs"].get(key, []), misc["vals"].get(key, [])
            if len(t_idxs) != len(t_vals):
                raise TrialError(f"trial {misc['tid']!r}, label {key!r}: idxs {t_idxs!r} and vals {t_vals!r} differ in length")
            idxs[key].extend(t_idxs)
            vals[key].extend(t_vals)
    return idxs, vals


def spec_from_misc(misc: Mapping[str, Any]) -> dict[str, Any]:
    """``{label: value}`` of one misc (labels without a value left out)."""
    spec = {}
    for key, value in misc["vals"].items():
        if len(value) == 1:
            spec[key] = value[0]
        elif len(value) > 1:
            raise TrialError(f"label {key!r} has several values {value!r} in trial {misc.get('tid')!r}")
    return spec


def flat_vals(doc: Mapping[str, Any]) -> dict[str, Any]:
    """A document's ``{label: value}`` (hyperopt's one-element lists unpacked)."""
    return spec_from_misc(doc["misc"])


def pmin_sampled(mean: Sequence[float], var: Sequence[float], n_samples: int = 1000,
                 rng: np.random.Generator | None = None) -> np.ndarray:
    """Probability that each of several noisy losses N(mean, var) is the smallest,
    estimated from ``n_samples`` joint draws (hyperopt's ``utils.pmin_sampled``)."""
    rng = np.random.default_rng(0) if rng is None else rng
    mean, var = np.asarray(mean, dtype=float), np.asarray(var, dtype=float)
    draws = rng.normal(mean, np.sqrt(var), size=(n_samples, len(mean)))
    counts = np.bincount(draws.argmin(axis=1), minlength=len(mean))
    return counts / float(n_samples)
