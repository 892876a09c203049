"""``distopt.redis_trials``: ``RedisTrials`` (hand it to ``fmin`` and trials run on RQ
workers), re-exported from ``distopt.compat``; pickles name this module."""

from .compat.redis_trials import RedisTrials

__all__ = ["RedisTrials"]
