"""``from hyperopt.pyll.base import scope, as_apply`` works after changing the import."""

from . import as_apply, scope

__all__ = ["scope", "as_apply"]
