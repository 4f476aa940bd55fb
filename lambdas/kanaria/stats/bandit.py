"""Beta–Bernoulli Thompson sampling: traffic weights from the posterior probability that each arm is best."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Collection, Mapping

import numpy as np

DEFAULT_DRAWS = 10_000
DEFAULT_MIN_SHARE = 0.10


@dataclass(frozen=True)
class ThompsonResult:
    """New weights (sum to 1, removed arms at 0) and each remaining arm's P(best)."""

    weights: dict[str, float]
    prob_best: dict[str, float]
    removed: list[str]


def thompson_weights(
    arms: Mapping[str, tuple[int, int]],
    rng: np.random.Generator,
    *,
    draws: int = DEFAULT_DRAWS,
    min_share: float = DEFAULT_MIN_SHARE,
    removed: Collection[str] = (),
    prior: tuple[float, float] = (1.0, 1.0),
) -> ThompsonResult:
    """Weights = floor + (1 − k·floor)·P(best) over the k remaining arms; arms maps name → (successes, trials)."""
    active = [arm for arm in arms if arm not in set(removed)]
    if not active:
        raise ValueError("every arm is removed")
    successes = np.array([arms[a][0] for a in active], dtype=float)
    trials = np.array([arms[a][1] for a in active], dtype=float)
    if np.any(successes < 0) or np.any(successes > trials):
        raise ValueError("successes must be within [0, trials]")
    samples = rng.beta(prior[0] + successes, prior[1] + trials - successes, size=(draws, len(active)))
    prob_best = np.bincount(np.argmax(samples, axis=1), minlength=len(active)) / draws
    floor = min(min_share, 1.0 / len(active))
    shares = floor + (1.0 - floor * len(active)) * prob_best
    shares = shares / shares.sum()  # exact sum to 1 against rounding
    weights = {arm: 0.0 for arm in arms}
    weights.update({arm: float(w) for arm, w in zip(active, shares)})
    return ThompsonResult(
        weights=weights,
        prob_best={arm: float(p) for arm, p in zip(active, prob_best)},
        removed=[arm for arm in arms if arm not in active],
    )
