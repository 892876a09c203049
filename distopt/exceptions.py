"""hyperopt's ``hyperopt.exceptions`` import path: every exception hyperopt defines, each
a subclass of ``DistoptError`` (all are defined in ``distopt.errors``)."""

from .errors import (  # noqa: F401  (re-exported)
    AllTrialsFailed,
    BadSearchSpace,
    DistoptError,
    DuplicateLabel,
    InvalidAnnotatedParameter,
    InvalidLoss,
    InvalidResult,
    InvalidResultStatus,
    InvalidResultType,
    InvalidTrial,
)

__all__ = ["AllTrialsFailed", "BadSearchSpace", "DistoptError", "DuplicateLabel", "InvalidAnnotatedParameter",
           "InvalidLoss", "InvalidResult", "InvalidResultStatus", "InvalidResultType", "InvalidTrial"]
