"""A study whose trials report a learning curve, with the median pruner."""

import time

from distopt import hp, report

space = hp.uniform("x", -5, 5)
max_evals = 30
pruner = {"name": "median", "n_startup_trials": 3}


def objective(x):
    v = None
    for step in range(20):
        time.sleep(0.03)
        v = (x - 1.0) ** 2 + 2.0 * 0.7 ** step
        report(step, v)
    return v
