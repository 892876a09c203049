"""hyperopt's ``hyperopt.exceptions`` import path: ``from distopt.exceptions import
AllTrialsFailed`` works after changing the import. Every distopt error derives from
``DistoptError``."""

from .errors import DistoptError
from .trial.outcome import InvalidLoss, InvalidResult, InvalidResultStatus, InvalidResultType
from .trials import AllTrialsFailed

__all__ = ["AllTrialsFailed", "DistoptError", "InvalidLoss", "InvalidResult", "InvalidResultStatus",
           "InvalidResultType"]
