"""hyperopt's ``hyperopt.base`` import path: statuses, job states, ``Trials`` and its
documents, ``Domain``, and the idxs/vals helpers hyperopt-style suggest code uses."""

from .trial.codec import to_plain as SONify  # numpy values to plain Python, as hyperopt's SONify  # noqa: F401
from .compat.documents import (  # noqa: F401
    TRIAL_KEYS,
    TRIAL_MISC_KEYS,
    miscs_to_idxs_vals,
    miscs_update_idxs_vals,
    spec_from_misc,
)
from .compat.domain import Domain  # noqa: F401
from .trial.constants import (  # noqa: F401
    JOB_STATE_CANCEL,
    JOB_STATE_DONE,
    JOB_STATE_ERROR,
    JOB_STATE_NEW,
    JOB_STATE_RUNNING,
    JOB_STATES,
    STATUS_FAIL,
    STATUS_NEW,
    STATUS_OK,
    STATUS_RUNNING,
    STATUS_STRINGS,
    STATUS_SUSPENDED,
)
from .errors import AllTrialsFailed, InvalidLoss, InvalidResultStatus, InvalidTrial  # noqa: F401
from .fmin import validate_loss_threshold, validate_timeout  # noqa: F401
from .trial.record import JOB_VALID_STATES  # noqa: F401
from .trials import Trials, trials_from_docs  # noqa: F401

__all__ = [
    "SONify", "TRIAL_KEYS", "TRIAL_MISC_KEYS", "miscs_to_idxs_vals", "miscs_update_idxs_vals", "spec_from_misc",
    "Domain", "JOB_STATE_CANCEL", "JOB_STATE_DONE", "JOB_STATE_ERROR", "JOB_STATE_NEW", "JOB_STATE_RUNNING",
    "JOB_STATES", "JOB_VALID_STATES", "STATUS_FAIL", "STATUS_NEW", "STATUS_OK", "STATUS_RUNNING", "STATUS_STRINGS",
    "STATUS_SUSPENDED", "AllTrialsFailed", "InvalidLoss", "InvalidResultStatus", "InvalidTrial",
    "validate_loss_threshold", "validate_timeout", "Trials", "trials_from_docs",
]
