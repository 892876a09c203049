"""The polynomial study: one parameter, minimum near x = 4.

    distopt run scripts/polynomial_study.py --workers 4        # private Redis + 4 workers
    distopt run scripts/polynomial_study.py                    # in this process
    distopt run scripts/polynomial_study.py --redis redis://host:6379/0   # on a cluster
"""

import numpy as np

from distopt import hp

max_evals = 100
space = hp.uniform("x", -5, 6)


def objective(x):
    return float(np.poly1d([1, -2, -28, 28, 12, -26, 100])(x))
