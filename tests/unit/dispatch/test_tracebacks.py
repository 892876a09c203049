"""A traceback from shipped code names the user's file, line and source, not "<dynamic-code>"."""

import linecache
import sys
import textwrap

from distopt import hp
from distopt.dispatch import objective as obj
from distopt.trial.tracebacks import DYNAMIC, format_exc, remember


def test_a_shipped_objective_raising_names_its_file_line_and_source(tmp_path, monkeypatch):
    module = tmp_path / "user_study_tb.py"
    module.write_text(textwrap.dedent("""
        def helper(x):
            return 1 / (x - x)  # the line that raises

        def objective(x):
            return helper(x)
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    import user_study_tb

    try:
        ref, blob = obj.pickle_objective(user_study_tb.objective, hp.uniform("x", 0, 1), secret=b"k")
    finally:
        del sys.modules["user_study_tb"]
    module.unlink()  # like a worker that has no copy of the file
    linecache.clearcache()
    _, shipped = obj.unpack(blob, ref.digest, secret=b"k", insecure=False)
    try:
        shipped["fn"](0.5)
    except ZeroDivisionError as exc:
        plain = format_exc(exc)
        assert DYNAMIC in plain and str(module) not in plain  # what cloudpickle alone gives
        remember(shipped["code"])
        text = format_exc(exc)
    assert f'File "{module}", line 6, in objective' in text
    assert f'File "{module}", line 3, in helper' in text and "return 1 / (x - x)  # the line that raises" in text
    assert DYNAMIC not in text and text.rstrip().endswith("ZeroDivisionError: float division by zero")
