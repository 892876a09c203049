"""Summaries of benchmark records: medians, ranks, paired win rates, degradation."""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Iterable, Mapping, Sequence

import numpy as np
from scipy.stats import rankdata

Record = Mapping[str, object]

#: Relative epsilon for ratios of regrets: eps_p = EPS_REL * scale_p, where scale_p is the
#: median regret of 1000 fixed prior draws of problem p.
EPS_REL = 1e-6


def medians(records: Iterable[Record]) -> dict[tuple[int, str, str], float]:
    """(q, problem, optimizer) -> median best regret over seeds."""
    groups: dict[tuple[int, str, str], list[float]] = defaultdict(list)
    for r in records:
        groups[(int(r["q"]), str(r["problem"]), str(r["optimizer"]))].append(float(r["best_regret"]))
    return {k: float(np.median(v)) for k, v in groups.items()}


def fmt(x: float) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if x == 0:
        return "0"
    if abs(x) >= 1e4 or abs(x) < 1e-3:
        return f"{x:.2e}"
    return f"{x:.4g}"


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) if rows else len(str(h)) for i, h in enumerate(header)]
    line = lambda cells: "  ".join(  # noqa: E731
        str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in enumerate(zip(cells, widths))
    )
    out = [line(header), "  ".join("-" * w for w in widths)]
    out += [line(r) for r in rows]
    return "\n".join(out)


def mean_ranks(med: Mapping[tuple[int, str, str], float], q: int, problems: Sequence[str],
               group: Sequence[str]) -> dict[str, float]:
    """Mean over problems of each optimizer's rank (1 = lowest median regret; ties share
    the average rank) within ``group``. Problems missing a member are skipped."""
    ranks: dict[str, list[float]] = {o: [] for o in group}
    for p in problems:
        vals = [med.get((q, p, o)) for o in group]
        if any(v is None for v in vals):
            continue
        for o, rk in zip(group, rankdata(vals, method="average")):
            ranks[o].append(float(rk))
    return {o: float(np.mean(v)) if v else math.nan for o, v in ranks.items()}


def win_rate(records: Iterable[Record], q: int, a: str, b: str) -> tuple[float, int]:
    """Fraction of (problem, seed) pairs where ``a``'s best regret is below ``b``'s;
    ties (equal within 1e-12 relative) count half. Returns (rate, number of pairs)."""
    by: dict[tuple[str, int, str], float] = {}
    for r in records:
        if int(r["q"]) == q and r["optimizer"] in (a, b):
            by[(str(r["problem"]), int(r["seed"]), str(r["optimizer"]))] = float(r["best_regret"])
    score, n = 0.0, 0
    for (p, s, o), va in by.items():
        if o != a or (p, s, b) not in by:
            continue
        vb = by[(p, s, b)]
        n += 1
        if abs(va - vb) <= 1e-12 * (1 + abs(va) + abs(vb)):
            score += 0.5
        elif va < vb:
            score += 1.0
    return (score / n if n else math.nan), n


def degradation(med: Mapping[tuple[int, str, str], float], q: int, optimizer: str, problems: Sequence[str],
                scales: Mapping[str, float]) -> float:
    """Geometric mean over problems of (median regret at q + eps) / (median regret at
    q=1 + eps), eps = EPS_REL * problem scale."""
    return _ratio(med, (q, optimizer), (1, optimizer), problems, scales)


def relative(med: Mapping[tuple[int, str, str], float], q: int, optimizer: str, reference: str,
             problems: Sequence[str], scales: Mapping[str, float]) -> float:
    """Geometric mean over problems of (median regret of ``optimizer`` + eps) / (median
    regret of ``reference`` + eps), both at ``q``: how much better or worse it searches
    with the same number of workers (unlike ``degradation``, a strong sequential result
    is not held against it)."""
    return _ratio(med, (q, optimizer), (q, reference), problems, scales)


def _ratio(med: Mapping[tuple[int, str, str], float], num: tuple[int, str], den: tuple[int, str],
           problems: Sequence[str], scales: Mapping[str, float]) -> float:
    """Geometric mean over problems of (median regret of ``num`` + eps) / (that of ``den``
    + eps); ``num`` and ``den`` are (q, optimizer); problems missing either are skipped."""
    logs = []
    for p in problems:
        a, b = med.get((num[0], p, num[1])), med.get((den[0], p, den[1]))
        if a is None or b is None:
            continue
        eps = EPS_REL * scales[p]
        logs.append(math.log((max(a, 0.0) + eps) / (max(b, 0.0) + eps)))
    return float(math.exp(np.mean(logs))) if logs else math.nan


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("PASS" if ok else "MISS")
