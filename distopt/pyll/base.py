"""``from hyperopt.pyll.base import scope`` works after changing the import."""

from . import scope

__all__ = ["scope"]
