"""Search spaces: frozen nodes, the ``hp`` constructors, compilation and evaluation."""

from . import hp
from .compile import CompiledSpace, ParamSpec, compile_space
from .evaluate import space_eval
from .nodes import Choice, Expr, Node, Param

__all__ = ["hp", "CompiledSpace", "ParamSpec", "compile_space", "space_eval", "Choice", "Expr", "Node", "Param"]
