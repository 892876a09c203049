"""One ``fmin`` run over a given ``Trials``: what ``fmin`` and hyperopt's ``Trials.fmin``
method both do once the trials are chosen.

With a plain ``Trials`` trials run in this process, one after another, as in hyperopt.
With ``RedisTrials`` they run on workers, ``parallelism`` at a time; the loop is the same
``Coordinator`` either way. It takes the trials as an argument (never makes one), so
``Trials`` can call it without the two modules needing each other.
"""

from __future__ import annotations

import inspect
import logging
import numbers
import pickle
from typing import Any, Callable, Mapping, Sequence

from .domain import Domain
from .suggest import HyperoptAlgo, is_hyperopt_algo
from ..coordinator.inline import InlineExecutor
from ..coordinator.loop import Coordinator, StopRules
from ..defaults import MAX_RETRIES, NO_LIMIT, max_evals_count
from ..errors import DistoptError, InvalidAnnotatedParameter
from ..space.compile import check_labels
from ..space.evaluate import space_eval
from ..space.nodes import Node
from ..study.rows import atomic_write

# hyperopt's module name, the one users filter fmin's warnings by
log = logging.getLogger("distopt.fmin")


def validate_timeout(timeout: Any) -> None:
    if timeout is not None and (
        not isinstance(timeout, numbers.Number) or isinstance(timeout, bool) or timeout <= 0
    ):
        raise DistoptError(f"The timeout argument should be None or a positive value. Given value: {timeout}")


def validate_loss_threshold(loss_threshold: Any) -> None:
    if loss_threshold is not None and (
        not isinstance(loss_threshold, numbers.Number) or isinstance(loss_threshold, bool)
    ):
        raise DistoptError(
            f"The loss_threshold argument should be None or a numeric value. Given value: {loss_threshold}"
        )


def _annotated(fn: Callable[..., Any]) -> tuple[dict[str, Any], Callable[[Any], Any]]:
    space = dict(inspect.getfullargspec(fn).annotations)
    space.pop("return", None)
    for name, node in space.items():
        if not isinstance(node, Node):
            raise InvalidAnnotatedParameter(
                f'When using `space="annotated"`, annotate every argument of the objective with an '
                f"hp expression; argument {name!r} is annotated with {node!r}"
            )

    def objective(kwargs: Mapping[str, Any]) -> Any:
        return fn(**kwargs)

    return space, objective


def minimize(
    fn: Callable[[Any], Any],
    space: Any,
    trials: Any,
    algo: Callable[..., Any] | None = None,
    max_evals: int | None = None,
    timeout: float | None = None,
    loss_threshold: float | None = None,
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
    """``fmin``'s work for ``trials`` (a ``Trials`` or ``RedisTrials``), its arguments
    as ``fmin`` documents them. ``points_to_evaluate`` are ignored, with a warning, for
    in-process trials given by the caller, as in hyperopt."""
    validate_timeout(timeout)
    validate_loss_threshold(loss_threshold)
    max_evals = _max_evals(max_evals)
    if isinstance(space, str) and space == "annotated":
        space, fn = _annotated(fn)
    check_labels(space)
    if points_to_evaluate and getattr(trials, "run_fmin", None) is None:
        log.warning(
            "points_to_evaluate is ignored when trials= is given, as in hyperopt (%d points not evaluated); "
            "pass them to generate_trials_to_calculate(points) and use that as trials, or leave trials out",
            len(points_to_evaluate))
        points_to_evaluate = None
    if algo is not None and is_hyperopt_algo(algo):
        algo = HyperoptAlgo(algo, Domain(fn, space), trials)
    study = trials.attach(space, algo, rstate, pruner)
    for point in points_to_evaluate or ():
        study.enqueue(point)

    rules = StopRules(max_evals=int(max_evals), timeout=timeout, loss_threshold=loss_threshold,
                      early_stop_fn=early_stop_fn, early_stop_view=trials)
    run = getattr(trials, "run_fmin", None)
    if run is not None:  # distributed trials bring their own executor
        run(fn, rules, parallelism=parallelism, trial_timeout=trial_timeout, max_retries=max_retries,
            show_progressbar=show_progressbar if verbose else False)
    else:
        if trial_timeout is not None:
            log.warning("trial_timeout applies to trials run by workers (RedisTrials); this in-process run ignores it")
        executor = InlineExecutor(fn, reraise=not catch_eval_exceptions)
        coordinator = Coordinator(study, executor, rules, parallelism=1,
                                  show_progressbar=show_progressbar if verbose else False,
                                  ticks=_save_ticks(trials, trials_save_file))
        coordinator.run()
    if trials_save_file:
        _save(trials, trials_save_file)
    if return_argmin:
        trials.require_results()  # hyperopt's "no evaluation tasks", or AllTrialsFailed naming the first error
        return trials.argmin
    if len(trials) > 0:  # as hyperopt: AllTrialsFailed when trials ran but none is ok
        return space_eval(space, trials.argmin)
    return None


def _max_evals(max_evals: Any) -> int:
    """hyperopt takes any number: an integral float (``1e3``) is that many trials and
    None or infinity means no limit (stop by timeout, loss_threshold or early_stop_fn)."""
    try:
        count = max_evals_count(max_evals)
    except ValueError:
        raise DistoptError(
            f"max_evals must be a non-negative whole number (or None / float('inf') for no limit), got {max_evals!r}"
        ) from None
    return NO_LIMIT if count is None else count


def _save(trials: Any, path: str) -> None:
    with atomic_write(path, binary=True) as fh:
        pickle.dump(trials, fh)


def _save_ticks(trials: Any, path: str) -> tuple:
    if not path:
        return ()
    return (lambda study, now: _save(trials, path),)
