"""A pytest plugin that writes each test's outcome (and each file that failed to import)
as JSON to the file named by DISTOPT_COMPAT_OUTCOMES, for ``run_hyperopt_suite.py``."""

from __future__ import annotations

import json
import os

_outcomes: dict[str, str] = {}
_broken: dict[str, str] = {}


def pytest_runtest_logreport(report):
    if report.when == "call" or report.outcome != "passed":
        if report.nodeid not in _outcomes or _outcomes[report.nodeid] == "passed":
            _outcomes[report.nodeid] = report.outcome


def pytest_collectreport(report):
    if report.outcome == "failed":
        _broken[report.nodeid] = str(report.longrepr).strip().splitlines()[-1][:300]


def pytest_sessionfinish(session):
    path = os.environ.get("DISTOPT_COMPAT_OUTCOMES")
    if path:
        with open(path, "w") as fh:
            json.dump({"outcomes": _outcomes, "import_errors": _broken}, fh, indent=1, sort_keys=True)
