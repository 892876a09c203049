"""hyperopt 0.3's own unit tests, run against distopt (see run_hyperopt_suite.py).

One test runs them all in a pytest subprocess, where ``import hyperopt`` gives distopt,
and checks the share of hyperopt's public-API tests (those passing on hyperopt itself)
that pass on distopt. The alias lives only in that subprocess.
"""

import json
import os
import subprocess
import sys

import pytest

from tests.compat.run_hyperopt_suite import REFERENCE, ROOT, hyperopt_version

pytest.importorskip("hyperopt", reason="hyperopt (a test dependency) runs its own tests here")

#: Share of hyperopt's passing public tests that must pass on distopt.
MIN_SHARE = 0.9


def test_hyperopt_own_tests_pass_on_distopt():
    with open(REFERENCE) as fh:
        reference = json.load(fh)
    assert hyperopt_version() == reference["hyperopt"], (
        f"the reference list is for hyperopt {reference['hyperopt']}, hyperopt {hyperopt_version()} is installed: "
        "rerun python -m tests.compat.run_hyperopt_suite --against hyperopt --write-reference")
    proc = subprocess.run([sys.executable, "-m", "tests.compat.run_hyperopt_suite", "--json"], cwd=ROOT,
                          capture_output=True, text=True, timeout=900,
                          env=dict(os.environ, PYTHONPATH=os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")])))
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    lines = [f"{name}: {row['passed']}/{row['reference']}" for name, row in result["files"].items()]
    failing = [f for row in result["files"].values() for f in row["failing"]]
    print(f"hyperopt {result['hyperopt']} public tests passing on distopt: {result['passed']}/{result['reference']}")
    print("\n".join(lines + ["failing:"] + failing))
    assert result["reference"] >= 80, f"only {result['reference']} public tests in the reference list"
    assert result["passed"] >= MIN_SHARE * result["reference"], (
        f"{result['passed']}/{result['reference']} of hyperopt's public tests pass; failing: {failing}; "
        f"import errors: {result['import_errors']}")
