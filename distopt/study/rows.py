"""Trials as rows: plain dicts, CSV, JSON lines of a JSON array, or a pandas DataFrame.

One row per trial with fixed columns (``COLUMNS``) and then one column per parameter,
holding the flat value hyperopt keeps in ``misc.vals`` (empty when the parameter was
inactive in that trial's branch); a choice whose options are plain values (strings,
numbers, booleans, null) is written as the option chosen when ``choices`` gives them
(``choice_options``), else as its option index. Times are epoch seconds,
so a file read back gives the same numbers. A parameter whose label equals a fixed
column is written as ``param:<label>``.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
from typing import IO, Any, Iterable, Iterator, Mapping, Sequence

from ..trial.codec import to_plain
from ..errors import require
from ..trial.record import TrialRecord, TrialState, labels_of
from ..space import CompiledSpace

COLUMNS: tuple[str, ...] = (
    "tid", "state", "loss", "attempt", "worker",
    "book_time", "start_time", "end_time", "duration", "error", "last_step", "last_value",
)
#: The JSON-only column: every intermediate value, as [[step, value], ...].
CURVE_COLUMN = "intermediate_values"
TIME_COLUMNS = ("book_time", "start_time", "end_time")


def param_columns(labels: Iterable[str]) -> dict[str, str]:
    """label -> column name, renaming the labels that clash with a fixed column."""
    return {label: (f"param:{label}" if label in COLUMNS else label) for label in labels}


def _labels_of(space: CompiledSpace | Sequence[str] | None, records: Sequence[TrialRecord]) -> list[str]:
    if isinstance(space, CompiledSpace):
        return space.labels
    if space is not None:
        return list(space)
    return labels_of(records)


def choice_options(space: Any) -> dict[str, list[Any]]:
    """label -> options of every choice in ``space`` whose options are all plain JSON
    values (a choice between sub-spaces keeps its index in exports)."""
    from ..space.nodes import Choice, children

    found: dict[str, list[Any]] = {}

    def walk(node: Any) -> None:
        plain = isinstance(node, Choice) and all(o is None or isinstance(o, (str, int, float, bool))
                                                 for o in node.options)
        if plain:
            found[node.label] = list(node.options)
        for child in children(node):
            walk(child)

    walk(space)
    return found


def chosen_value(options: Sequence[Any] | None, value: Any) -> Any:
    """The option ``value`` indexes in ``options`` (``value`` itself without options)."""
    if options is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return value
    if float(value).is_integer() and 0 <= int(value) < len(options):
        return options[int(value)]
    return value


def trials_rows(
    records: Sequence[TrialRecord],
    compiled_space: CompiledSpace | Sequence[str] | None = None,
    states: Iterable[TrialState | str] | None = None,
    curves: Mapping[int, Any] | None = None,
    intermediate: bool = False,
    choices: Mapping[str, Sequence[Any]] | None = None,
) -> list[dict[str, Any]]:
    """One plain dict per trial, in tid order; ``states`` keeps only those states.

    ``compiled_space`` (or a list of labels) fixes the parameter columns and their order;
    without it they are the labels found in the records. ``curves`` (tid ->
    ``CurveData``) fill ``last_step``/``last_value`` with each trial's last report, and
    with ``intermediate`` also ``intermediate_values`` ([[step, value], ...], for JSON).
    ``choices`` (``choice_options`` of the space) writes those choices as the option
    chosen instead of its index.
    """
    curves = curves or {}
    choices = choices or {}
    wanted = None if states is None else {TrialState(s) for s in states}
    columns = param_columns(_labels_of(compiled_space, records))
    rows = []
    for rec in sorted(records, key=lambda r: r.tid):
        if wanted is not None and rec.state not in wanted:
            continue
        row: dict[str, Any] = {
            "tid": rec.tid,
            "state": rec.state.value,
            "loss": rec.loss,
            "attempt": rec.attempt,
            "worker": rec.worker,
            "book_time": rec.book_time,
            "start_time": rec.start_time,
            "end_time": rec.end_time,
            "duration": rec.duration,
            "error": rec.error,
        }
        curve = curves.get(rec.tid)
        steps, values = (curve.steps, curve.values) if curve is not None else ([], [])
        row["last_step"] = steps[-1] if steps else None
        row["last_value"] = values[-1] if values else None
        if intermediate:
            row[CURVE_COLUMN] = [[s, v] for s, v in zip(steps, values)]
        for label, column in columns.items():
            row[column] = to_plain(chosen_value(choices.get(label), rec.vals.get(label)))
        rows.append(row)
    return rows


def row_columns(rows: Sequence[Mapping[str, Any]], labels: Iterable[str] = ()) -> list[str]:
    """Fixed columns, then parameter columns in first-seen order (``labels`` first)."""
    seen = dict.fromkeys(COLUMNS)
    seen.update(dict.fromkeys(param_columns(labels).values()))
    for row in rows:
        seen.update(dict.fromkeys(row))
    return list(seen)


def write_csv(rows: Sequence[Mapping[str, Any]], out: IO[str], columns: Sequence[str] | None = None) -> None:
    """CSV with a header; None is written as an empty field, floats in full precision."""
    writer = csv.DictWriter(out, fieldnames=list(columns or row_columns(rows)), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if v is None else repr(v) if isinstance(v, float) else v) for k, v in row.items()})


def write_rows(rows: Sequence[Mapping[str, Any]], out: IO[str], fmt: str, labels: Iterable[str] = ()) -> None:
    """``rows`` as ``fmt`` ("csv", with ``labels``' columns first, or "json"): the one
    format switch of ``distopt trials`` and ``distopt run --save``."""
    if fmt == "csv":
        write_csv(rows, out, row_columns(rows, labels))
    else:
        write_json(rows, out)


@contextlib.contextmanager
def atomic_write(path: str, binary: bool = False) -> Iterator[IO[Any]]:
    """Open ``path`` for writing so that readers see the old file or the whole new one, never
    half of it (a crash or Ctrl-C mid-write leaves the old file): write a sibling, then rename."""
    tmp = f"{path}.tmp"
    with open(tmp, "wb") if binary else open(tmp, "w", newline="", encoding="utf-8") as fh:
        yield fh
    os.replace(tmp, path)


def write_json(rows: Sequence[Mapping[str, Any]], out: IO[str]) -> None:
    """A JSON array with one trial per line (non-finite floats as "nan"/"inf" strings)."""
    lines = [json.dumps(to_plain(dict(row)), allow_nan=False) for row in rows]
    out.write("[\n" + ",\n".join(lines) + ("\n" if lines else "") + "]\n")


def trials_dataframe(snap: Any, indices: bool = False) -> Any:
    """A pandas DataFrame of ``trials_rows`` for a study snapshot (anything with ``records``
    and ``labels``; ``snapshot.as_snapshot`` makes one of a Study or Trials), with the time
    columns as UTC datetimes (needs ``pip install distopt[pandas]``); a choice as the option
    chosen, as ``distopt trials`` writes it (its index with ``indices``)."""
    pd = require("pandas", "pandas", "Trials.to_dataframe()")
    space = getattr(snap, "space", None)
    choices = None if indices or space is None else choice_options(space)
    rows = trials_rows(snap.records, list(snap.labels), choices=choices)
    frame = pd.DataFrame(rows, columns=row_columns(rows, snap.labels))
    for column in TIME_COLUMNS:
        frame[column] = pd.to_datetime(frame[column].astype("float64"), unit="s", utc=True)
    return frame
