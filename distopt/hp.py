"""hyperopt's ``hyperopt.hp`` import path: the space constructors (``distopt.space.hp``)."""

from .space.hp import (  # noqa: F401
    __all__,
    choice,
    lognormal,
    loguniform,
    normal,
    pchoice,
    qlognormal,
    qloguniform,
    qnormal,
    quniform,
    randint,
    uniform,
    uniformint,
)
