"""The budget rule: where a learning curve reaches its plateau.

A *learning curve* is a validation metric (higher is better, e.g. AJI) evaluated at increasing
training steps, for one or more seeds. The rule, applied to the mean over seeds:

1. smooth: trailing mean over ``window`` evaluations (one noisy evaluation decides nothing);
2. plateau: the mean of the smoothed curve over its last ``tail`` fraction of evaluations;
3. flattened: the least-squares line through the raw values of that tail rises by at most
   ``tolerance`` from its first to its last step (evaluation noise does not count as a trend;
   a curve still rising at its end has no plateau yet, and its budget is only a lower bound);
4. budget: the smallest evaluated step whose smoothed value is within ``tolerance`` of the
   plateau.

A comparison is *at plateau* when its segmenter trained at least ``budget`` steps of the same
size (same network, patch size and batch).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["PlateauBudget", "mean_curve", "plateau_budget"]


@dataclass(frozen=True)
class PlateauBudget:
    """Result of :func:`plateau_budget`.

    Attributes:
        budget: smallest step whose smoothed value is within ``tolerance`` of the plateau.
        plateau: the plateau value (mean of the smoothed curve over the tail).
        flattened: whether the tail's least-squares rise is at most ``tolerance``.
        rise: that rise (negative when the curve declines over its tail).
        steps: the evaluated steps, ascending.
        smoothed: the smoothed mean curve at those steps.
        tolerance: the tolerance used.
    """

    budget: int
    plateau: float
    flattened: bool
    rise: float
    steps: tuple[int, ...]
    smoothed: tuple[float, ...]
    tolerance: float

    def at_plateau(self, steps: int) -> bool:
        """Whether a run of ``steps`` training steps reached the plateau budget."""
        return self.flattened and steps >= self.budget


def mean_curve(curves: Sequence[dict[int, float]]) -> tuple[list[int], list[float]]:
    """Mean over seeds at the steps every seed was evaluated at: ``(steps, values)``."""
    if not curves:
        raise ValueError("no learning curves given")
    common = sorted(set.intersection(*(set(c) for c in curves)))
    if not common:
        raise ValueError("the learning curves share no evaluated step")
    return common, [float(np.mean([c[s] for c in curves])) for s in common]


def plateau_budget(
    steps: Sequence[int],
    values: Sequence[float],
    tolerance: float = 0.01,
    window: int = 3,
    tail: float = 1 / 3,
) -> PlateauBudget:
    """The plateau budget of one curve (see the module docstring).

    Args:
        steps: evaluated steps, strictly ascending.
        values: the metric at those steps (higher is better).
        tolerance: how close to the plateau counts as reached (AJI 0.01 by default).
        window: trailing-mean width in evaluations (1 = no smoothing).
        tail: fraction of the evaluations (at least ``window``) that defines the plateau.
    """
    steps_array = np.asarray(steps, dtype=np.int64)
    values_array = np.asarray(values, dtype=np.float64)
    if steps_array.ndim != 1 or steps_array.shape != values_array.shape:
        raise ValueError(
            f"steps and values must be 1-D of one length, got {len(steps)} and {len(values)}"
        )
    if len(steps_array) < 2 * window:
        raise ValueError(
            f"a plateau needs at least {2 * window} evaluations, got {len(steps_array)}"
        )
    if np.any(np.diff(steps_array) <= 0):
        raise ValueError("steps must be strictly ascending")
    if not np.all(np.isfinite(values_array)):
        raise ValueError("values must be finite")
    kernel = np.ones(window) / window
    smoothed = np.convolve(values_array, kernel, mode="full")[: len(values_array)]
    smoothed[: window - 1] = [values_array[: k + 1].mean() for k in range(window - 1)]
    n_tail = max(window, int(round(tail * len(smoothed))))
    tail_values = smoothed[-n_tail:]
    plateau = float(tail_values.mean())
    tail_steps = steps_array[-n_tail:].astype(np.float64)
    slope = np.polyfit(tail_steps, values_array[-n_tail:], 1)[0]
    rise = float(slope * (tail_steps[-1] - tail_steps[0]))
    reached = np.nonzero(smoothed >= plateau - tolerance)[0]
    return PlateauBudget(
        budget=int(steps_array[reached[0]]),
        plateau=plateau,
        flattened=rise <= tolerance,
        rise=rise,
        steps=tuple(int(s) for s in steps_array),
        smoothed=tuple(float(v) for v in smoothed),
        tolerance=tolerance,
    )
