"""Trial rows, CSV/JSON round trips and the optional pandas DataFrame."""

from __future__ import annotations

import csv
import io
import json
import sys

import pytest

from distopt import Study, Trials, fmin, hp
from distopt.study.rows import COLUMNS, trials_dataframe, trials_rows, write_csv, write_json
from distopt.errors import MissingExtra
from distopt.trial.record import TrialRecord, TrialState
from distopt.study.snapshot import as_snapshot, read_study
from distopt.space import compile_space
from distopt.storage import RedisStorage

SPACE = {
    "x": hp.uniform("x", -1, 1),
    "model": hp.choice("model", [{"kind": "tree", "depth": hp.randint("depth", 1, 9)}, {"kind": "linear"}]),
}
RECORDS = [
    TrialRecord(0, {"x": 0.25, "model": 0, "depth": 3}, TrialState.OK, loss=0.125, worker="h:1",
                book_time=100.0, start_time=101.5, end_time=103.0),
    TrialRecord(1, {"x": -0.5, "model": 1}, TrialState.FAIL, attempt=1, worker="h:2", error="Traceback\nValueError: bad, \"x\"",
                book_time=100.0, start_time=102.0, end_time=102.25),
    TrialRecord(2, {"x": 0.1, "model": 1}, TrialState.QUEUED, book_time=104.0),
]


def test_rows_hold_fixed_columns_then_parameters():
    rows = trials_rows(RECORDS, compile_space(SPACE))
    assert list(rows[0]) == [*COLUMNS, "x", "model", "depth"]
    assert rows[0]["duration"] == 1.5 and rows[0]["state"] == "ok" and rows[0]["depth"] == 3
    assert rows[1]["depth"] is None and rows[1]["loss"] is None and rows[1]["attempt"] == 1
    assert rows[2]["duration"] is None and rows[2]["end_time"] is None


def test_state_filter_and_label_order_without_a_space():
    rows = trials_rows(list(reversed(RECORDS)), None, states=["ok", TrialState.FAIL])
    assert [r["tid"] for r in rows] == [0, 1]
    assert list(rows[0])[len(COLUMNS):] == ["x", "model", "depth"]


def test_a_label_that_clashes_with_a_column_is_renamed():
    rows = trials_rows([TrialRecord(0, {"loss": 3, "x": 1.0}, TrialState.OK, loss=0.5)], ["loss", "x"])
    assert rows[0]["loss"] == 0.5 and rows[0]["param:loss"] == 3


def _float(text):
    return None if text == "" else float(text)


def test_csv_round_trip():
    rows = trials_rows(RECORDS, compile_space(SPACE))
    buf = io.StringIO()
    write_csv(rows, buf)
    back = list(csv.DictReader(io.StringIO(buf.getvalue())))
    assert len(back) == 3 and list(back[0]) == list(rows[0])
    for row, got in zip(rows, back):
        assert int(got["tid"]) == row["tid"] and got["state"] == row["state"]
        for col in ("loss", "book_time", "start_time", "end_time", "duration", "x", "depth"):
            assert _float(got[col]) == row[col]
        assert (got["error"] or None) == row["error"] and (got["worker"] or None) == row["worker"]


def test_json_round_trip_one_trial_per_line():
    rows = trials_rows(RECORDS, compile_space(SPACE))
    buf = io.StringIO()
    write_json(rows, buf)
    assert json.loads(buf.getvalue()) == rows
    assert len(buf.getvalue().splitlines()) == len(rows) + 2
    empty = io.StringIO()
    write_json([], empty)
    assert json.loads(empty.getvalue()) == []


def test_non_finite_loss_is_written_as_strict_json():
    rows = trials_rows([TrialRecord(0, {"x": 1.0}, TrialState.OK, loss=float("inf"))])
    buf = io.StringIO()
    write_json(rows, buf)
    assert json.loads(buf.getvalue())[0]["loss"] == "inf"


def test_study_and_trials_to_dataframe():
    pd = pytest.importorskip("pandas")
    study = Study(SPACE, seed=1, name="frame")
    for t in study.ask(4):
        study.tell(t, t.params["x"] ** 2)
    frame = study.to_dataframe()
    assert list(frame["tid"]) == [0, 1, 2, 3] and set(frame["state"]) == {"ok"}
    assert str(frame["end_time"].dtype).startswith("datetime64") and "x" in frame and "depth" in frame
    trials = Trials()
    fmin(lambda p: p["x"] ** 2, SPACE, max_evals=5, trials=trials, show_progressbar=False, rstate=None)
    assert len(trials.to_dataframe()) == 5
    assert len(Trials().to_dataframe()) == 0 and isinstance(Trials().to_dataframe(), pd.DataFrame)


def test_dataframe_of_a_stored_study(fake_redis):
    pytest.importorskip("pandas")
    storage = RedisStorage(fake_redis)
    study = Study(SPACE, seed=2, storage=storage, name="stored")
    for t in study.ask(3):
        study.tell(t, 1.0)
    snap = read_study(fake_redis, "stored")
    assert snap.labels == ("x", "model", "depth") and len(snap.records) == 3
    assert list(trials_dataframe(snap)["loss"]) == [1.0, 1.0, 1.0]
    assert as_snapshot(snap) is snap


def test_missing_pandas_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(MissingExtra, match=r"pip install 'distopt\[pandas\]'"):
        Study(SPACE).to_dataframe()


def test_dataframe_writes_choices_as_values_unless_indices():
    pytest.importorskip("pandas")
    space = {"x": hp.uniform("x", -1, 1), "opt": hp.choice("opt", ["adam", "sgd"])}
    study = Study(space, seed=2, name="frame-values")
    for t in study.ask(6):
        study.tell(t, t.params["x"] ** 2)
    frame = study.to_dataframe()
    assert set(frame["opt"]) <= {"adam", "sgd"} and len(frame) == 6
    assert set(study.to_dataframe(indices=True)["opt"]) <= {0, 1}
    assert list(frame["opt"]) == [["adam", "sgd"][r.vals["opt"]] for r in study.trials]
