"""A simulated pool of ``q`` asynchronous workers.

Trial durations are drawn from an exponential distribution seeded by (problem, seed) and
handed out in ask order, so every optimizer sees the identical schedule: the k-th trial
it asks for always takes ``durations[k]``. The pool starts by asking ``q`` trials; each
time the earliest-running trial finishes it is told, and one new trial is asked while the
other ``q - 1`` are still pending. The run ends when ``budget`` trials have been told.
"""

from __future__ import annotations

import heapq
import math
import time
import zlib
from dataclasses import dataclass
from typing import Any, Callable, Protocol

import numpy as np


class Optimizer(Protocol):
    def ask(self) -> tuple[Any, Any]:
        """A handle for the new trial and the point the objective receives."""

    def tell(self, handle: Any, loss: float) -> None:
        """Record the loss of a trial asked earlier."""


def durations(problem: str, seed: int, budget: int) -> np.ndarray:
    """The schedule of (problem, seed): one exponential(1) duration per asked trial."""
    rng = np.random.default_rng([zlib.crc32(problem.encode()), int(seed)])
    return rng.exponential(1.0, size=budget)


@dataclass
class RunResult:
    best_regret: float
    wall_seconds: float
    regrets: list[float]  # in the order trials finished


def run_async(
    opt: Optimizer, objective: Callable[[Any], float], optimum: float, budget: int, q: int, schedule: np.ndarray,
    truth: Callable[[Any], float] | None = None,
) -> RunResult:
    """Drive ``opt`` through the schedule with ``q`` workers; it is told ``objective(params)``
    and scored by regret ``truth(params) - optimum`` (``truth`` defaults to the objective;
    a noisy problem passes its noise-free value)."""
    if len(schedule) < budget:
        raise ValueError(f"schedule has {len(schedule)} durations, budget is {budget}")
    t0 = time.perf_counter()
    running: list[tuple[float, int, Any, Any]] = []
    asked = 0

    def ask(now: float) -> None:
        nonlocal asked
        handle, params = opt.ask()
        heapq.heappush(running, (now + float(schedule[asked]), asked, handle, params))
        asked += 1

    for _ in range(min(q, budget)):
        ask(0.0)
    regrets: list[float] = []
    while running:
        now, _, handle, params = heapq.heappop(running)
        loss = float(objective(params))
        opt.tell(handle, loss)
        regrets.append((loss if truth is None else float(truth(params))) - optimum)
        if asked < budget:
            ask(now)
    finite = [r for r in regrets if math.isfinite(r)]
    return RunResult(min(finite) if finite else math.inf, time.perf_counter() - t0, regrets)
