"""Draws from a space's prior: what random search samples and TPE starts from."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..space.compile import CompiledSpace, ParamSpec


def quantize(values: np.ndarray, q: float | None) -> np.ndarray:
    """hyperopt's quantization: ``round(value / q) * q``."""
    return values if q is None else np.round(values / q) * q


def from_internal(spec: ParamSpec, z: np.ndarray) -> np.ndarray:
    """Internal (possibly log) scale -> user value, quantized."""
    v = np.exp(z) if spec.log else z
    return quantize(v, spec.q)


def sample_prior(spec: ParamSpec, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` values of one parameter from its prior, in the user's scale."""
    if spec.kind == "float":
        return from_internal(spec, rng.uniform(spec.low, spec.high, size=n))
    if spec.kind == "normal":
        return from_internal(spec, rng.normal(spec.mu, spec.sigma, size=n))
    if spec.kind == "int":
        return rng.integers(int(spec.low), int(spec.high), size=n).astype(float)
    return rng.choice(spec.n_options, size=n, p=np.asarray(spec.probs)).astype(float)


def plain_value(spec: ParamSpec, value: float) -> Any:
    """Python scalar for a sampled value: int for integer and categorical kinds."""
    return int(value) if spec.kind in ("int", "cat") else float(value)


def sample_prior_point(space: CompiledSpace, rng: np.random.Generator) -> dict[str, Any]:
    """One assignment of the active parameters, drawn from the prior in sampling order."""
    vals: dict[str, Any] = {}
    for spec in space:
        if spec.is_active(vals):
            vals[spec.label] = plain_value(spec, sample_prior(spec, 1, rng)[0])
    return vals
