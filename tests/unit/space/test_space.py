"""The search-space language: construction, compilation, evaluation, errors."""

import math

import numpy as np
import pytest

from distopt import hp, space_eval
from distopt.errors import DistoptError, SpaceError
from distopt.pyll import scope
from distopt.pyll.stochastic import sample
from distopt.space import compile_space
from distopt.space.serialize import space_from_json, space_to_json


def nested_space():
    return {
        "lr": hp.loguniform("lr", -7, 0),
        "layers": scope.int(hp.quniform("layers", 1, 5, 1)),
        "model": hp.choice("model", [
            {"kind": "svm", "C": hp.lognormal("C", 0, 1)},
            {"kind": "tree", "depth": hp.randint("depth", 2, 10), "crit": hp.pchoice("crit", [(0.3, "gini"), (0.7, "entropy")])},
        ]),
        "shift": 1 + hp.lognormal("shift", 0, 1),
        "pair": (hp.uniform("a", 0, 1), [hp.normal("b", 0, 2)]),
    }


def test_compile_orders_parents_before_children_and_records_conditions():
    cs = compile_space(nested_space())
    labels = cs.labels
    assert labels.index("model") < labels.index("C") < labels.index("depth")
    assert cs["C"].conditions == ((("model", 0),),)
    assert cs["crit"].conditions == ((("model", 1),),)
    assert cs["lr"].conditions == ((),)
    assert cs["lr"].log and cs["lr"].kind == "float"
    assert cs["depth"].kind == "int" and (cs["depth"].low, cs["depth"].high) == (2, 10)
    assert cs["crit"].probs == (0.3, 0.7)


def test_same_parameter_in_two_branches_is_active_in_either():
    shared = hp.uniform("shared", 0, 1)
    cs = compile_space(hp.choice("c", [{"x": shared}, {"y": shared}, 3]))
    assert cs["shared"].is_active({"c": 0}) and cs["shared"].is_active({"c": 1})
    assert not cs["shared"].is_active({"c": 2})


def test_space_eval_returns_python_types_and_selected_branch():
    vals = {"lr": math.exp(-3), "layers": 3.0, "model": 1, "depth": 4, "crit": 1, "shift": 2.0, "a": 0.5, "b": -1.0}
    out = space_eval(nested_space(), vals)
    assert out["model"] == {"kind": "tree", "depth": 4, "crit": "entropy"}
    assert isinstance(out["layers"], int) and out["layers"] == 3
    assert out["shift"] == 3.0
    assert out["pair"] == (0.5, (-1.0,))  # sequences come back as tuples, as in hyperopt
    assert isinstance(out["pair"], tuple)


def test_space_eval_accepts_hyperopt_list_values():
    assert space_eval({"x": hp.uniform("x", 0, 1)}, {"x": [0.25]}) == {"x": 0.25}


def test_samples_respect_bounds_quantization_and_conditions():
    rng = np.random.default_rng(0)
    space = nested_space()
    for _ in range(200):
        point = sample(space, rng)
        assert math.exp(-7) <= point["lr"] <= 1
        assert point["layers"] in {1, 2, 3, 4, 5}
        if point["model"]["kind"] == "svm":
            assert set(point["model"]) == {"kind", "C"} and point["model"]["C"] > 0
        else:
            assert 2 <= point["model"]["depth"] < 10
            assert point["model"]["crit"] in ("gini", "entropy")
        assert point["shift"] > 1


def test_space_round_trips_through_json():
    space = nested_space()
    data = space_to_json(space)
    assert data is not None
    back = space_from_json(data)
    assert compile_space(back) == compile_space(space)
    vals = sample(space, 3)
    assert vals is not None


def test_space_with_non_json_constant_has_no_json_form():
    assert space_to_json(hp.choice("f", [len, abs])) is None


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: hp.uniform("x", 1, 1), "'x': low should be less than high"),
        (lambda: hp.uniform("x", 2, 1), "'x': low should be less than high"),
        (lambda: hp.loguniform("lr", 0, -1), "'lr': low should be less than high"),
        (lambda: hp.quniform("q", 0, 10, 0), "'q': q must be positive"),
        (lambda: hp.qloguniform("q", 0, 10, -1), "'q': q must be positive"),
        (lambda: hp.qnormal("q", 0, 1, 0), "'q': q must be positive"),
        (lambda: hp.normal("n", 0, 0), "'n': sigma must be positive"),
        (lambda: hp.lognormal("n", 0, -1), "'n': sigma must be positive"),
        (lambda: hp.randint("r", 0), "'r': randint needs low < high"),
        (lambda: hp.randint("r", 5, 5), "'r': randint needs low < high"),
        (lambda: hp.randint("r", 1.5), "'r': upper must be an integer"),
        (lambda: hp.choice("c", []), "'c': options is empty"),
        (lambda: hp.choice("c", "abc"), "'c': options must be a list, tuple or 1-D array"),
        (lambda: hp.pchoice("p", [(0.5, "a"), (0.4, "b")]), "'p': probabilities must sum to 1, they sum to 0.9"),
        (lambda: hp.pchoice("p", [(1.5, "a"), (-0.5, "b")]), "'p': probability -0.5 is negative"),
        (lambda: hp.pchoice("p", []), "'p': give a non-empty list"),
        (lambda: hp.uniform("x", "a", 1), "'x': low must be a number, got 'a'"),
        (lambda: hp.uniform("x", 0, float("inf")), "'x': high must be finite"),
        (lambda: hp.uniform("", 0, 1), "label must be a non-empty string"),
        (lambda: hp.uniform(3, 0, 1), "label must be a non-empty string, got 3"),
    ],
)
def test_bad_spaces_raise_space_error_naming_label_and_problem(make, message):
    with pytest.raises(SpaceError) as info:
        make()
    assert message in str(info.value)
    assert isinstance(info.value, DistoptError)


def test_duplicate_labels_are_refused():
    with pytest.raises(SpaceError, match="duplicate label 'x'"):
        compile_space({"a": hp.uniform("x", 0, 1), "b": hp.normal("x", 0, 1)})


def test_reusing_one_node_is_not_a_duplicate():
    x = hp.uniform("x", 0, 1)
    assert compile_space([x, x, {"y": x}]).labels == ["x"]


def test_space_eval_names_missing_label_and_bad_index():
    with pytest.raises(SpaceError, match="no value for hyperparameter 'x'"):
        space_eval(hp.uniform("x", 0, 1), {})
    with pytest.raises(SpaceError, match="choice 'c' has 2 options; index 5 is out of range"):
        space_eval(hp.choice("c", [1, 2]), {"c": 5})


def test_a_parameter_admits_only_values_in_its_support():
    compiled = compile_space({"c": hp.choice("c", ["a", "b"]), "lr": hp.loguniform("lr", -3, 0),
                              "q": hp.quniform("q", 0, 10, 2), "n": hp.randint("n", 5)})
    assert compiled["c"].admits(1) and not compiled["c"].admits(2) and not compiled["c"].admits(0.5)
    assert compiled["lr"].admits(0.1) and not compiled["lr"].admits(2.0)
    assert compiled["q"].admits(11.0) and not compiled["q"].admits(13.0)  # a quantum of slack
    assert compiled["n"].admits([4]) and not compiled["n"].admits(5) and not compiled["n"].admits(float("nan"))
    assert not compiled["n"].admits("x")
