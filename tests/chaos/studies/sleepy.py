"""A study whose trials take a moment, so that chaos can strike in the middle of one."""

import time

from distopt import hp

space = hp.uniform("x", -5, 5)
max_evals = 40


def objective(x):
    time.sleep(0.25)
    return (x - 1.0) ** 2
