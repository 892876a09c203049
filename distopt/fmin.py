"""hyperopt's ``hyperopt.fmin`` import path: re-exports of ``distopt.compat``."""

from .compat.domain import Domain
from .compat.fmin import fmin
from .compat.minimize import validate_loss_threshold, validate_timeout
from .compat.trials import Trials, generate_trials_to_calculate
from .errors import InvalidAnnotatedParameter
from .space.evaluate import space_eval

__all__ = ["fmin", "space_eval", "Trials", "Domain", "generate_trials_to_calculate", "validate_timeout",
           "validate_loss_threshold", "InvalidAnnotatedParameter"]
