"""hyperopt's ``Trials`` import path (``distopt.trials``): re-exports of ``distopt.compat``.

Pickled ``Trials`` name this module: ``Trials`` says it lives here (its ``__module__``),
so pickles stay loadable across moves of the code behind it and by earlier versions.
"""

from .compat.record_documents import to_plain_doc, to_plain_result, trial_document
from .compat.trials import Trials, generate_trials_to_calculate, trials_from_docs
from .errors import AllTrialsFailed

__all__ = ["Trials", "trials_from_docs", "generate_trials_to_calculate", "trial_document", "to_plain_doc",
           "to_plain_result", "AllTrialsFailed"]
