"""Pruners: pure decisions on learning curves (arrays of intermediate values), no I/O.

A pruner sees one ``Snapshot``: the curve of the trial that just reported, the curves
every other trial of the study reported so far (running, pruned and complete ones), and
how many trials completed. It answers whether to stop the trial now. Where the curves
come from (a dict in this process, one Redis round trip on a worker) is not its business,
so the same decision runs in-process and on any worker.

Lower values are better, as for the loss.
"""

from ._base import Curve, Pruner, Snapshot
from ._hyperband import HyperbandPruner
from ._nop import NopPruner
from ._percentile import MedianPruner, PercentilePruner
from ._spec import NAMES, make_pruner, pruner_from_json
from ._successive_halving import SuccessiveHalvingPruner

__all__ = [
    "Curve", "Pruner", "Snapshot", "NopPruner", "MedianPruner", "PercentilePruner",
    "SuccessiveHalvingPruner", "HyperbandPruner", "make_pruner", "pruner_from_json", "NAMES",
]
