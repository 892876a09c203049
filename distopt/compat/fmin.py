"""``fmin``: hyperopt's entry point, with its signature and behaviour.

With a plain ``Trials`` (or none) trials run in this process, one after another, as in
hyperopt. With ``RedisTrials`` they run on workers, ``parallelism`` at a time.
"""

from __future__ import annotations

import os
import pickle
from typing import Any, Callable, Mapping, Sequence

from .minimize import minimize
from .trials import Trials, generate_trials_to_calculate
from ..defaults import MAX_RETRIES


def fmin(
    fn: Callable[[Any], Any],
    space: Any,
    algo: Callable[..., Any] | None = None,
    max_evals: int | None = None,
    timeout: float | None = None,
    loss_threshold: float | None = None,
    trials: Trials | None = None,
    rstate: Any = None,
    allow_trials_fmin: bool = True,
    pass_expr_memo_ctrl: Any = None,
    catch_eval_exceptions: bool = False,
    verbose: bool = True,
    return_argmin: bool = True,
    points_to_evaluate: Sequence[Mapping[str, Any]] | None = None,
    max_queue_len: int = 1,
    show_progressbar: Any = True,
    early_stop_fn: Callable[..., Any] | None = None,
    trials_save_file: str = "",
    *,
    parallelism: int | None = None,
    trial_timeout: float | None = None,
    max_retries: int = MAX_RETRIES,
    pruner: Any = None,
) -> Any:
    """Minimize ``fn`` over ``space``; returns the best point's ``{label: value}``
    (choice values as indices, use ``space_eval``) or, with ``return_argmin=False``, the
    best point itself.

    For distributed trials (``RedisTrials``): ``parallelism`` trials in flight;
    ``trial_timeout`` seconds after which a running trial is stopped and FAILs;
    ``max_retries`` runs more of a trial whose worker vanished, before it FAILs.

    ``pruner`` (a ``distopt.pruners`` instance, or "median", "asha", "hyperband", ...)
    stops trials early from the values the objective passes to ``distopt.report``;
    pruned trials count toward ``max_evals`` and the sampler learns from them."""
    if trials is None and trials_save_file and os.path.exists(trials_save_file):
        with open(trials_save_file, "rb") as fh:
            trials = pickle.load(fh)
    if trials is None:  # a fresh search evaluates the given points first
        trials = generate_trials_to_calculate(points_to_evaluate or ())
        points_to_evaluate = None
    return minimize(
        fn, space, trials, algo=algo, max_evals=max_evals, timeout=timeout, loss_threshold=loss_threshold,
        rstate=rstate, allow_trials_fmin=allow_trials_fmin, pass_expr_memo_ctrl=pass_expr_memo_ctrl,
        catch_eval_exceptions=catch_eval_exceptions, verbose=verbose, return_argmin=return_argmin,
        points_to_evaluate=points_to_evaluate, max_queue_len=max_queue_len, show_progressbar=show_progressbar,
        early_stop_fn=early_stop_fn, trials_save_file=trials_save_file, parallelism=parallelism,
        trial_timeout=trial_timeout, max_retries=max_retries, pruner=pruner)
