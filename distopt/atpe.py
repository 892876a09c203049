"""hyperopt's ``hyperopt.atpe`` import path. Adaptive TPE is not provided: hyperopt's
needs lightgbm and a pre-trained model; ``suggest`` says so and names the alternative."""

from typing import Any

from .errors import AlgoError


def suggest(*args: Any, **kwargs: Any) -> list:
    raise AlgoError(
        "atpe.suggest (adaptive TPE) is not provided by distopt: hyperopt's needs lightgbm and its "
        "pre-trained models. Use tpe.suggest, whose settings (gamma, n_EI_candidates, ...) cover the same ground"
    )


__all__ = ["suggest"]
