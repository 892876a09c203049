"""One exception base for everything distopt raises on purpose.

Catching ``DistoptError`` catches every error the library raises about a user's input or
its environment; the subclasses let callers react to one kind without parsing messages.
"""

from __future__ import annotations

import importlib
from types import ModuleType


class DistoptError(Exception):
    """Base of every error distopt raises on purpose."""


class SpaceError(DistoptError, ValueError):
    """A search space is malformed (bad bounds, duplicate labels, empty choice, ...)."""


class AlgoError(DistoptError, ValueError):
    """A sampler was given invalid settings (gamma outside (0, 1], unknown liar, ...)."""


class TrialError(DistoptError, ValueError):
    """A trial or result is invalid (unknown tid, bad loss, illegal state change)."""


class StorageError(DistoptError):
    """The storage backend failed or holds something unexpected."""


class StudyNotFound(StorageError, LookupError):
    """The named study does not exist on this storage."""


class StudyClosed(DistoptError):
    """The study ended (done or cancelled): it takes no new trials until a run continues it."""


class StudyRunning(DistoptError):
    """The study is being run by a live coordinator, so it cannot be deleted or changed."""


class StudyLost(StorageError, LookupError):
    """A study that existed is gone from storage (a Redis without persistence restarted)."""


class LeaseError(StorageError):
    """Another coordinator holds the study's lease."""


class LeaseLost(LeaseError):
    """This coordinator's lease generation is no longer the study's: another coordinator
    took the study over, and every write this one tried since was refused."""


class ObjectiveError(DistoptError):
    """The objective cannot be shipped to, loaded by, or verified on a worker."""


class ConnectionFailed(DistoptError, ConnectionError):
    """A Redis server could not be reached (host and port are in the message)."""


class PrunerError(DistoptError, ValueError):
    """A pruner was given invalid options or an unknown name."""


class TrialPruned(DistoptError):
    """Raised by ``distopt.report`` inside an objective when the pruner stops the trial.

    Let it propagate (or raise it yourself): the trial ends PRUNED with its last reported
    value, and the worker is free at once."""
# -- hyperopt's exceptions (``distopt.exceptions`` is hyperopt's import path for them) ------

class BadSearchSpace(SpaceError):
    """A search space hyperopt would reject (hyperopt's ``BadSearchSpace``)."""


class DuplicateLabel(BadSearchSpace):
    """Two different hyperparameters share one label (hyperopt's ``DuplicateLabel``)."""


class InvalidTrial(TrialError):
    """A trial document lacks a key hyperopt requires, or its ids disagree."""


class InvalidResult(TrialError):
    """The objective returned something that is not a result (hyperopt raises here too)."""


class InvalidResultStatus(InvalidResult):
    """A result dict without a 'status', or one not among hyperopt's STATUS_STRINGS."""


class InvalidLoss(InvalidResult):
    """A result dict with status 'ok' whose 'loss' is missing or not a number."""


class InvalidResultType(InvalidResult, TypeError):
    """The objective returned neither a number nor a dict (None, a string, an array...)."""


class AllTrialsFailed(DistoptError):
    """No trial reported a usable loss, so there is no best trial."""


class InvalidAnnotatedParameter(DistoptError, ValueError):
    """``space="annotated"`` needs every argument of the objective annotated with a node."""


class InvalidName(DistoptError, ValueError):
    """A study name or digest breaks the naming rule (the message states the rule)."""


class PlotError(DistoptError, ValueError):
    """There is nothing to plot yet (no trials, or none finished)."""


class TrialTimeout(BaseException):
    """The trial ran past its ``trial_timeout`` (a BaseException: user code's
    ``except Exception`` must not swallow it)."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"the trial ran longer than its trial_timeout of {seconds:g} s and was stopped")
        self.seconds = seconds


class Terminated(SystemExit):
    """SIGTERM while a run's local processes run: a SystemExit (code 128 + signal) that
    the CLI can tell from other exits, to say how the study was left."""

    def __init__(self, signum: int = 15) -> None:  # SIGTERM
        super().__init__(128 + signum)
        self.signum = signum


class MissingExtra(DistoptError, ImportError):
    """An optional dependency is not installed (the message names the pip extra)."""


def require(module: str, extra: str, purpose: str) -> ModuleType:
    """Import ``module`` or raise ``MissingExtra`` naming ``pip install distopt[extra]``."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtra(
            f"{purpose} needs {module.split('.')[0]}, which is not installed; "
            f"install it with: pip install 'distopt[{extra}]'"
        ) from exc


class PortTaken(StorageError):
    """The embedded redis-server lost the race for the free port it was given; the server
    starts again on another one (callers never see it)."""
