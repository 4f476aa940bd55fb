"""Peeking-safe inference: group-sequential O'Brien–Fleming-type boundaries and always-valid mSPRT.

Group-sequential: Lan–DeMets spending α(t) = 2 − 2Φ(z_{1−α/2}/√t) on the information fraction t. Under H0 the
look statistics are Z_k = S_k/√t_k with S a Brownian motion in information time (corr(Z_i, Z_j) = √(t_i/t_j)).
The two-sided boundary c_k solves P(|Z_j| < c_j for j < k, |Z_k| ≥ c_k) = α(t_k) − α(t_{k−1}); the
probability is computed by the Armitage–McPherson–Rowe recursion (Jennison & Turnbull 2000, ch. 19):
the sub-density of S on the continuation region is propagated look to look with Simpson's rule.

Always-valid: the mixture SPRT of Johari, Pekelis & Walsh (2017) for an estimate Δ ~ N(θ, V) with a
N(0, τ²) mixing distribution. Λ = √(V/(V+τ²)) · exp(τ²Δ² / (2V(V+τ²))); p = min(1, 1/Λ) is valid at any
look by Ville's inequality, and {θ : Λ(θ) < 1/α} is a (1 − α) confidence sequence.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable, NamedTuple, Sequence

import numpy as np
from scipy import special, stats

from kanaria.stats import distributions as dist

MIN_LOOK_SPACING = 1e-3  # looks closer than this in information are treated as one look (corr > 0.9995)
DEFAULT_PLANNED_LOOKS = 20
_GRID_POINTS_PER_SD = 4  # Simpson nodes per kernel SD: boundaries within 1e-5 of a 32-node grid
_MAX_GRID_INTERVALS = 2000
_TAIL_SDS = 8.5  # S_k beyond ±8.5·√t_k has probability < 1e-16
_STATE_CACHE_LIMIT = 50_000
_SQRT_2PI = math.sqrt(2.0 * math.pi)


def obf_alpha_spent(t: Any, alpha: float = 0.05) -> Any:
    """Cumulative two-sided alpha spent by information fraction t: 2 − 2Φ(z_{1−α/2}/√t) (0 at t = 0)."""
    t = np.asarray(t, dtype=float)
    z = stats.norm.ppf(1.0 - alpha / 2.0)
    positive = np.where(t > 0, t, 1.0)
    spent = np.where(t > 0, 2.0 * stats.norm.sf(z / np.sqrt(positive)), 0.0)
    return float(spent) if spent.ndim == 0 else spent


@lru_cache(maxsize=64)
def obf_spending(alpha: float) -> Callable[[float], float]:
    """The O'Brien–Fleming-type spending function for `alpha` as one cache-stable callable t ↦ α(t)."""
    z = float(stats.norm.ppf(1.0 - alpha / 2.0))

    def spend(t: float) -> float:
        return 2.0 * float(dist.norm_cdf(-z / math.sqrt(t))) if t > 0 else 0.0

    return spend


class _LookState(NamedTuple):
    """After look k: boundary and the sub-density of S_k, f(s) = Σ mass_j φ((s − node_j)/√delta)/√delta."""

    t: float
    boundary_z: float
    boundary_s: float
    nodes: np.ndarray
    mass: np.ndarray
    delta: float
    spent: float


_state_cache: dict[tuple[Callable[[float], float], tuple[float, ...]], _LookState] = {}


@lru_cache(maxsize=256)
def _simpson_weights(intervals: int) -> np.ndarray:
    weights = np.full(intervals + 1, 2.0)
    weights[1::2] = 4.0
    weights[0] = weights[-1] = 1.0
    weights.flags.writeable = False  # shared between calls
    return weights / 3.0


def _continuation_measure(prev: _LookState, next_delta: float) -> tuple[np.ndarray, np.ndarray]:
    """Simpson nodes and weighted densities of S_{k} on |s| < b_k, fine enough for the next increment."""
    half_width = min(prev.boundary_s, _TAIL_SDS * math.sqrt(prev.t))
    spacing = min(math.sqrt(prev.delta), math.sqrt(next_delta)) / _GRID_POINTS_PER_SD
    intervals = min(_MAX_GRID_INTERVALS, max(2, math.ceil(2.0 * half_width / spacing)))
    intervals += intervals % 2
    step = 2.0 * half_width / intervals
    nodes = np.arange(intervals + 1) * step - half_width
    return nodes, _simpson_weights(intervals) * step * _density(nodes, prev)


def _density(points: np.ndarray, prev: _LookState) -> np.ndarray:
    """Σ_j mass_j φ((s − u_j)/σ)/σ at each point; only nodes within ±8.5σ contribute (a band of the grid)."""
    sd = math.sqrt(prev.delta)
    nodes, mass = prev.nodes, prev.mass
    band = 2 * math.ceil(_TAIL_SDS * sd / (nodes[1] - nodes[0])) + 1 if len(nodes) > 1 else len(nodes)
    if band * 2 >= len(nodes):
        x = (points[:, None] - nodes[None, :]) * (1.0 / sd)
        return np.exp(-0.5 * x * x) @ mass * (1.0 / (_SQRT_2PI * sd))
    # prev.nodes is a uniform grid: each point's neighbours are one contiguous window of it
    first = np.floor((points - _TAIL_SDS * sd - nodes[0]) / (nodes[1] - nodes[0])).astype(np.intp)
    window = first[:, None] + np.arange(band)[None, :]
    inside = (window >= 0) & (window < len(nodes))
    window = np.clip(window, 0, len(nodes) - 1)
    x = (points[:, None] - nodes[window]) * (1.0 / sd)
    return (np.exp(-0.5 * x * x) * np.where(inside, mass[window], 0.0)).sum(axis=1) * (1.0 / (_SQRT_2PI * sd))


def _solve_boundary(nodes: np.ndarray, mass: np.ndarray, t: float, delta: float, target: float) -> float:
    """c with P(continue so far, |Z_k| ≥ c) = target: Newton on log-probability, safeguarded by bisection."""
    total = float(mass.sum())
    if target >= total:
        return 0.0
    scale = math.sqrt(t / delta)
    signed = np.stack([-nodes, nodes]) * (1.0 / math.sqrt(delta))  # rows: the lower and the upper exit
    lo, hi = 0.0, 40.0
    c = min(max(-float(dist.norm_ppf(target / (2.0 * total))), 1e-6), hi - 1.0)
    for _ in range(200):
        z = signed - c * scale
        exit_p = float((dist.norm_cdf(z) @ mass).sum())
        if exit_p > target:
            lo = c
        else:
            hi = c
        if exit_p <= 0.0:
            c = 0.5 * (lo + hi)
            continue
        log_gap = math.log(exit_p / target)
        if abs(log_gap) < 1e-10:
            return c
        slope = -scale * float((np.exp(-0.5 * z * z) @ mass).sum()) / _SQRT_2PI
        candidate = c - log_gap * exit_p / slope if slope < 0 else lo
        if not lo < candidate < hi:
            candidate = 0.5 * (lo + hi)
        if abs(candidate - c) < 1e-10:
            return candidate
        c = candidate
    return c


def _next_look(spending: Callable[[float], float], prev: _LookState | None, t: float) -> _LookState:
    if prev is None:
        nodes, mass, t_prev, spent_prev = np.zeros(1), np.ones(1), 0.0, 0.0
    else:
        t_prev, spent_prev = prev.t, prev.spent
        nodes, mass = _continuation_measure(prev, t - t_prev)
    delta = t - t_prev
    spent = spending(t)
    target = spent - spent_prev
    c = math.inf if target <= 0.0 else _solve_boundary(nodes, mass, t, delta, target)
    return _LookState(t, c, c * math.sqrt(t), nodes, mass, delta, spent)


def _look_states(fractions: tuple[float, ...], spending: Callable[[float], float]) -> list[_LookState]:
    if len(_state_cache) > _STATE_CACHE_LIMIT:
        _state_cache.clear()
    states: list[_LookState] = []
    prev: _LookState | None = None
    for k in range(len(fractions)):
        key = (spending, fractions[: k + 1])
        state = _state_cache.get(key)
        if state is None:
            state = _state_cache[key] = _next_look(spending, prev, fractions[k])
        states.append(state)
        prev = state
    return states


def _check_fractions(fractions: Sequence[float]) -> tuple[float, ...]:
    clean = tuple(round(float(t), 12) for t in fractions)
    if not clean:
        raise ValueError("at least one look is needed")
    if any(not 0.0 < t <= 1.0 for t in clean):
        raise ValueError("information fractions must be in (0, 1]")
    if any(b - a < MIN_LOOK_SPACING * 0.999 for a, b in zip(clean, clean[1:])):
        raise ValueError(f"information fractions must increase by at least {MIN_LOOK_SPACING}")
    return clean


def group_sequential_boundaries(
    fractions: Sequence[float], alpha: float = 0.05, spending: Callable[[float], float] | None = None
) -> tuple[float, ...]:
    """Two-sided symmetric z boundaries c_k at the given looks; O'Brien–Fleming-type unless `spending` is given."""
    spend = obf_spending(alpha) if spending is None else spending
    return tuple(s.boundary_z for s in _look_states(_check_fractions(fractions), spend))


def information_schedule(
    current: float, previous: Sequence[float] | None = None, planned_looks: int = DEFAULT_PLANNED_LOOKS
) -> tuple[float, ...]:
    """Looks so far ending at `current` (capped at 1); without history, previous looks at j/planned_looks."""
    current = min(float(current), 1.0)
    if not current > 0.0:
        raise ValueError("current information fraction must be > 0")
    if previous is None:
        previous = [j / planned_looks for j in range(1, planned_looks + 1)]
    # a re-read at (almost) the same information is the same look: it spends no new alpha
    kept = [float(t) for t in previous if 0.0 < float(t) < current - MIN_LOOK_SPACING]
    merged: list[float] = []
    for t in kept:
        if merged and t - merged[-1] < MIN_LOOK_SPACING:
            merged[-1] = t
        else:
            merged.append(t)
    return tuple(merged) + (current,)


@dataclass(frozen=True)
class SequentialLook:
    """The current look of a group-sequential design: its boundary and the alpha spent so far."""

    fractions: tuple[float, ...]
    boundaries: tuple[float, ...]
    boundary_z: float
    nominal_alpha: float
    alpha_spent: float


def obf_look(
    current: float,
    previous: Sequence[float] | None = None,
    alpha: float = 0.05,
    planned_looks: int = DEFAULT_PLANNED_LOOKS,
) -> SequentialLook:
    """Boundary at the current look given earlier looks; reject when the two-sided p ≤ nominal_alpha."""
    fractions = _check_fractions(information_schedule(current, previous, planned_looks))
    states = _look_states(fractions, obf_spending(alpha))
    c = states[-1].boundary_z
    nominal = 0.0 if math.isinf(c) else float(2.0 * dist.norm_sf(c))
    return SequentialLook(fractions, tuple(s.boundary_z for s in states), c, nominal, states[-1].spent)


class MsprtStatistics(NamedTuple):
    """Arrays of mixture-SPRT results; `valid` is False where the variance is zero or undefined."""

    log_likelihood_ratio: np.ndarray
    p_value: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    valid: np.ndarray


def msprt_normal(effect: Any, variance: Any, tau2: Any, alpha: float = 0.05) -> MsprtStatistics:
    """Always-valid p-value and (1 − alpha) confidence sequence for θ from Δ ~ N(θ, V), mixing N(0, τ²).

    V = 0 (no spread in either arm) is the limit: p = 0 for Δ ≠ 0, 1 for Δ = 0, and the sequence is the point Δ.
    """
    effect, v, tau2 = (np.asarray(x, dtype=float) for x in (effect, variance, tau2))
    valid = np.isfinite(effect) & np.isfinite(v) & (v >= 0) & (tau2 > 0)
    spread = valid & (v > 0)
    v = np.where(spread, v, 1.0)
    tau2 = np.where(valid, tau2, 1.0)
    d = np.where(valid, effect, 0.0)
    log_lr = 0.5 * np.log(v / (v + tau2)) + tau2 * d * d / (2.0 * v * (v + tau2))
    log_lr = np.where(spread, log_lr, np.where(d != 0, np.inf, -np.inf))
    p_value = np.minimum(1.0, np.exp(-np.maximum(log_lr, 0.0)))
    half = np.where(
        spread, np.sqrt(v * (v + tau2) / tau2 * (2.0 * math.log(1.0 / alpha) + np.log((v + tau2) / v))), 0.0
    )
    nan = np.full(np.shape(log_lr), np.nan)
    return MsprtStatistics(
        np.where(valid, log_lr, nan),
        np.where(valid, p_value, nan),
        np.where(valid, d - half, nan),
        np.where(valid, d + half, nan),
        valid,
    )


class OneSidedMsprt(NamedTuple):
    """Arrays of the one-sided mixture SPRT: log e-value, always-valid p-value, validity."""

    log_e_value: np.ndarray
    p_value: np.ndarray
    valid: np.ndarray


def msprt_one_sided(effect: Any, variance: Any, tau2: Any) -> OneSidedMsprt:
    """Always-valid one-sided test of H0: θ ≤ 0 against θ > 0 from Δ ~ N(θ, V), mixing θ over a half-normal.

    The mixing density is 2·N(0, τ²) on θ > 0 (Howard et al. 2021's one-sided normal mixture):
        Λ⁺ = ∫₀^∞ exp((θΔ − θ²/2)/V) · 2φ(θ/τ)/τ dθ = 2 · √(V/(V+τ²)) · exp(τ²Δ²/(2V(V+τ²))) · Φ(τΔ/√(V(V+τ²))).
    Each likelihood ratio with θ > 0 is a non-negative supermartingale whenever the true θ ≤ 0, so Λ⁺ is one and
    p = min(1, 1/Λ⁺) is valid at any number of looks (Ville): P(∃ look with p ≤ a) ≤ a for every θ ≤ 0.
    V = 0 (a deterministic difference): p = 0 when Δ > 0, 1 otherwise. Invalid (nan) for nan/inf input or τ ≤ 0.
    """
    effect, v, tau2 = np.broadcast_arrays(*(np.asarray(x, dtype=float) for x in (effect, variance, tau2)))
    valid = np.isfinite(effect) & np.isfinite(v) & (v >= 0) & np.isfinite(tau2) & (tau2 > 0)
    positive_v = valid & (v > 0)
    safe_v = np.where(positive_v, v, 1.0)
    safe_tau2 = np.where(valid, tau2, 1.0)
    d = np.where(valid, effect, 0.0)
    total = safe_v + safe_tau2
    log_e = (
        math.log(2.0)
        + 0.5 * np.log(safe_v / total)
        + safe_tau2 * d * d / (2.0 * safe_v * total)
        + special.log_ndtr(np.sqrt(safe_tau2) * d / np.sqrt(safe_v * total))
    )
    log_e = np.where(positive_v, log_e, np.where(d > 0, np.inf, -np.inf))
    p_value = np.where(valid, np.exp(-np.maximum(log_e, 0.0)), np.nan)
    return OneSidedMsprt(np.where(valid, log_e, np.nan), p_value, valid)
