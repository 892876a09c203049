"""The compatibility rule between a coordinator and its workers: Python and cloudpickle
agree on major.minor; a patch difference is compatible and warned about once."""

import logging

import pytest

from distopt.errors import DistoptError
from distopt.dispatch.versions import check_workers, compare, local_versions

MINE = {"python": "3.11.7", "cloudpickle": "3.1.3", "distopt": "0.1.0"}


def test_identical_versions_agree_silently():
    verdict = compare(MINE, dict(MINE))
    assert verdict.compatible and verdict.identical


@pytest.mark.parametrize("name, other", [("cloudpickle", "3.1.2"), ("python", "3.11.9")])
def test_a_patch_difference_is_compatible_and_named(name, other):
    verdict = compare(MINE, {**MINE, name: other})
    assert verdict.compatible and verdict.differences == (f"{name} {MINE[name]} vs {other}",)


@pytest.mark.parametrize("name, other", [("cloudpickle", "3.0.0"), ("cloudpickle", "2.2.1"), ("python", "3.12.1")])
def test_a_minor_or_major_difference_is_not(name, other):
    verdict = compare(MINE, {**MINE, name: other})
    assert not verdict.compatible and verdict.differences == (f"{name} {MINE[name]} vs {other}",)


def test_a_major_minor_only_python_matches_its_patch_releases():
    assert compare({**MINE, "python": "3.11"}, MINE).identical
    assert not compare({**MINE, "python": "3.10"}, MINE).compatible


def test_the_distopt_version_is_shown_not_checked():
    assert compare(MINE, {**MINE, "distopt": "9.9.9"}).identical


def test_check_workers_names_every_mismatching_host_and_warns_once_for_patches(caplog):
    workers = {"gpu-1:10": {**MINE, "cloudpickle": "3.0.0"}, "gpu-2:11": {**MINE, "cloudpickle": "3.1.2"},
               "cpu-1:12": dict(MINE), "old:13": None}
    with pytest.raises(DistoptError) as err:
        check_workers(MINE, workers, "q")
    text = str(err.value)
    assert "gpu-1:10: cloudpickle 3.1.3 vs 3.0.0" in text and "gpu-2" not in text and "cpu-1" not in text
    assert "no trial was started" in text
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            check_workers(MINE, {"gpu-2:11": workers["gpu-2:11"]}, "q")
    assert sum("patch version only" in r.getMessage() for r in caplog.records) == 1


def test_local_versions_are_the_running_ones():
    import platform

    import cloudpickle

    v = local_versions()
    assert v["python"] == platform.python_version() and v["cloudpickle"] == cloudpickle.__version__
