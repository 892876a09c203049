"""Run hyperopt 0.3's own unit tests against distopt and print how many pass.

    python -m tests.compat.run_hyperopt_suite            # against distopt (import hyperopt -> distopt)
    python -m tests.compat.run_hyperopt_suite --against hyperopt --write-reference

The tests come from the installed hyperopt wheel (``hyperopt/tests``). Against distopt,
pytest runs in a subprocess with the ``tests.compat.alias`` plugin, which maps
``hyperopt.X`` to ``distopt.X`` only where that module exists; nothing else in the test
suite sees the alias. ``scope.py`` lists the tests that are hyperopt internals (out of
scope) and the seed-pinned ones; every other test is public API. The score is the number
of public tests passing on distopt among those that pass on hyperopt itself (the list in
``hyperopt_reference.json``, written by ``--against hyperopt --write-reference``).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile

from .scope import classify

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
REFERENCE = os.path.join(HERE, "hyperopt_reference.json")
#: hyperopt's test_base.py imports pymongo's bson at the top for its (out of scope) SONify
#: tests; a stand-in lets the file's Trials tests run without pymongo.
STUBS = os.path.join(HERE, "stubs")


def wheel_tests() -> str:
    import importlib.util

    spec = importlib.util.find_spec("hyperopt")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("hyperopt is not installed: pip install 'hyperopt==0.3.*'")
    return os.path.join(list(spec.submodule_search_locations)[0], "tests")


def hyperopt_version() -> str:
    from importlib.metadata import version

    return version("hyperopt")


def _deselect(tests_dir: str) -> list[str]:
    """Out-of-scope tests are not run (their ids are listed by scope.py)."""
    from .scope import OUT_OF_SCOPE

    args = []
    for prefix in OUT_OF_SCOPE:
        if prefix.endswith("/"):
            args += ["--ignore", os.path.join(tests_dir, prefix)]
        elif prefix.endswith(".py"):
            args += ["--ignore", os.path.join(tests_dir, prefix)]
        else:
            args += ["--deselect", prefix]
    return args


def run(against: str, timeout: float, run_all: bool = False) -> dict:
    """Outcomes of the wheel's tests: {"outcomes": {id: outcome}, "import_errors": {...}}."""
    tests_dir = wheel_tests()
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "outcomes.json")
        env = dict(os.environ, DISTOPT_COMPAT_OUTCOMES=out, MPLBACKEND="Agg",
                   PYTHONPATH=os.pathsep.join([ROOT, STUBS, os.environ.get("PYTHONPATH", "")]))
        cmd = [sys.executable, "-m", "pytest", "-q", "-c", os.path.join(HERE, "hyperopt_suite.ini"),
               "--rootdir", tests_dir, "--continue-on-collection-errors", "-p", "tests.compat.outcomes"]
        if against == "distopt":
            cmd += ["-p", "tests.compat.alias"]
        if not run_all:
            cmd += _deselect(tests_dir)
        cmd += [os.path.join(tests_dir, "test_base.py"), os.path.join(tests_dir, "unit")]
        proc = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True, timeout=timeout)
        if not os.path.exists(out):
            raise RuntimeError(f"pytest wrote no outcomes (exit {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        with open(out) as fh:
            data = json.load(fh)
    data["pytest_tail"] = proc.stdout[-4000:]
    return data


def score(data: dict, reference: list[str]) -> dict:
    """Per file: public tests passing on hyperopt, and how many of those pass here."""
    outcomes = data["outcomes"]
    files: dict[str, dict] = collections.defaultdict(lambda: {"reference": 0, "passed": 0, "failing": []})
    for test_id in reference:
        kind, _ = classify(test_id)
        if kind != "public":
            continue
        row = files[test_id.split("::")[0]]
        row["reference"] += 1
        if outcomes.get(test_id) == "passed":
            row["passed"] += 1
        else:
            row["failing"].append(f"{test_id} ({outcomes.get(test_id, 'not collected')})")
    total = sum(r["reference"] for r in files.values())
    passed = sum(r["passed"] for r in files.values())
    return {"files": dict(sorted(files.items())), "reference": total, "passed": passed,
            "import_errors": data.get("import_errors", {})}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--against", choices=("distopt", "hyperopt"), default="distopt")
    ap.add_argument("--write-reference", action="store_true", help="store the tests passing on hyperopt itself")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--timeout", type=float, default=1200.0)
    args = ap.parse_args(argv)
    data = run(args.against, args.timeout, run_all=args.write_reference)
    if args.write_reference:
        if args.against != "hyperopt":
            raise SystemExit("--write-reference needs --against hyperopt")
        passed = sorted(t for t, o in data["outcomes"].items() if o == "passed")
        with open(REFERENCE, "w") as fh:
            json.dump({"hyperopt": hyperopt_version(), "passed": passed}, fh, indent=1)
            fh.write("\n")
        print(f"{len(passed)} tests pass on hyperopt {hyperopt_version()}; written to {REFERENCE}")
        return 0
    with open(REFERENCE) as fh:
        ref = json.load(fh)
    result = score(data, ref["passed"])
    result["hyperopt"] = ref["hyperopt"]
    if args.json:
        print(json.dumps(result, indent=1))
        return 0
    print(f"hyperopt {ref['hyperopt']}'s public tests that pass on hyperopt, run {args.against}:")
    for name, row in result["files"].items():
        print(f"  {name:28s} {row['passed']:3d} / {row['reference']:3d}")
        for f in row["failing"]:
            print(f"      FAIL {f}")
    for name, err in result["import_errors"].items():
        print(f"  import error {name}: {err}")
    print(f"TOTAL {result['passed']} / {result['reference']} "
          f"({100.0 * result['passed'] / max(1, result['reference']):.1f}%)")
    from .scope import OUT_OF_SCOPE, SEED_PINNED

    print("out of scope (not run):")
    for prefix, reason in OUT_OF_SCOPE.items():
        print(f"  {prefix}: {reason}")
    print("seed-pinned (run, not counted):")
    for prefix, reason in SEED_PINNED.items():
        print(f"  {prefix}: {reason}  -> {data['outcomes'].get(prefix, 'not collected')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
