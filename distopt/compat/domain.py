"""``Domain``: hyperopt's pairing of an objective with its search space.

hyperopt-style code reads ``domain.expr`` (the space), ``domain.params`` (label -> the
hyperparameter's node) and calls ``domain.evaluate``/``loss``/``status`` on results;
test domains carry a ``name`` and ``loss_target``.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

from ..trial.constants import STATUS_NEW, STATUS_OK
from ..trial.outcome import interpret
from ..space import compile_space, space_eval
from ..space.compile import check_labels
from ..space.nodes import Choice, Expr, Param


def _params(space: Any, found: dict[str, Any]) -> dict[str, Any]:
    if isinstance(space, (Param, Choice)):
        found.setdefault(space.label, space)
        if isinstance(space, Choice):
            for option in space.options:
                _params(option, found)
    elif isinstance(space, Expr):
        for arg in space.args:
            _params(arg, found)
    elif isinstance(space, Mapping):
        for value in space.values():
            _params(value, found)
    elif isinstance(space, (list, tuple)):
        for value in space:
            _params(value, found)
    return found


class Domain:
    """An objective and its space; ``DuplicateLabel`` for a space hyperopt rejects."""

    def __init__(
        self,
        fn: Callable[[Any], Any],
        expr: Any,
        workdir: str | None = None,
        pass_expr_memo_ctrl: Any = None,
        name: str | None = None,
        loss_target: float | None = None,
    ) -> None:
        check_labels(expr)
        self.fn = fn
        self.expr = expr
        self.workdir = workdir
        self.pass_expr_memo_ctrl = pass_expr_memo_ctrl
        self.name = name
        self.loss_target = loss_target
        self.compiled = compile_space(expr)
        self.params: dict[str, Any] = _params(expr, {})

    def evaluate(self, config: Mapping[str, Any], ctrl: Any = None, attach_attachments: bool = True) -> dict[str, Any]:
        """The objective's result for the flat assignment ``config`` ({label: value}),
        as hyperopt's result dict; an invalid result raises as it does in hyperopt."""
        out = interpret(self.fn(space_eval(self.expr, config)), warn=False)
        if out.invalid is not None:
            raise out.invalid(out.error)
        return out.raw

    def short_str(self) -> str:
        return f"Domain{{{self.fn}}}"

    def loss(self, result: Mapping[str, Any], config: Any = None) -> float | None:
        return result.get("loss")

    def loss_variance(self, result: Mapping[str, Any], config: Any = None) -> float:
        return result.get("loss_variance", 0.0)

    def true_loss(self, result: Mapping[str, Any], config: Any = None) -> float | None:
        return result.get("true_loss", self.loss(result, config))

    def true_loss_variance(self, config: Any = None) -> float:
        raise NotImplementedError("a Domain knows no true loss variance; put 'true_loss_variance' in the results")

    def status(self, result: Mapping[str, Any], config: Any = None) -> str:
        return result["status"]

    def new_result(self) -> dict[str, Any]:
        return {"status": STATUS_NEW}


__all__ = ["Domain", "STATUS_OK"]
