"""distopt: distributed parallel hyperparameter optimization.

A drop-in for hyperopt's API (``hp``, ``fmin``, ``tpe.suggest``, ``rand.suggest``,
``Trials``, ``space_eval``, ``STATUS_OK``) whose trials can run on RQ workers on many
machines, with a TPE sampler that accounts for the trials still running.
"""

from . import algo
from . import anneal, mix, rand, tpe
from .trial.constants import (
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
from .defaults import VERSION
from .errors import DistoptError, TrialPruned
from .fmin import fmin
from . import pruners
from .trial.record import TrialState
from .trial.reporting import report, should_prune
from .redis_trials import RedisTrials
from . import hp
from .space import space_eval
from .study.study import Study, Trial
from .compat.domain import Domain
from .errors import AllTrialsFailed
from .trials import Trials, generate_trials_to_calculate, trials_from_docs

__version__ = VERSION

__all__ = [
    "hp", "fmin", "tpe", "rand", "anneal", "mix", "Trials", "Domain", "trials_from_docs", "RedisTrials", "space_eval", "Study", "Trial", "TrialState",
    "generate_trials_to_calculate", "AllTrialsFailed", "DistoptError",
    "report", "should_prune", "TrialPruned", "pruners",
    "STATUS_OK", "STATUS_FAIL", "STATUS_NEW", "STATUS_RUNNING", "STATUS_SUSPENDED", "STATUS_STRINGS",
    "JOB_STATE_NEW", "JOB_STATE_RUNNING", "JOB_STATE_DONE", "JOB_STATE_ERROR", "JOB_STATE_CANCEL", "JOB_STATES",
]
from .monitor.document import status; __all__.append("status")  # noqa: E402,E702
from .study.snapshot import StudyView, load_study; __all__ += ["load_study", "StudyView"]  # noqa: E402,E702
from .monitor.manage import delete_study, list_studies; __all__ += ["list_studies", "delete_study"]  # noqa: E402,E702
