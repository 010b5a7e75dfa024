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

A measure can be noisier than the tolerance asks to resolve: a classifier two-sample test of a
few hundred crops reads a fixed generator with a standard deviation of about 0.03 between
critic draws. Given that noise (``noise_sd``: the standard deviation of re-measuring an
unchanged model), a rise counts as a trend only beyond ``max(tolerance, 2 x its standard
error)`` (the standard error of a least-squares rise through the tail when each evaluation
carries independent noise of ``noise_sd``). :func:`tail_steadiness` says whether the tail's
evaluations stay within the tolerance of each other or, given the noise, spread no more than
re-measuring an unchanged model would (a one-sided 95% chi-square test on their variance).
A verdict reached through the noise says that the measure sees no movement, not that the
model moved less than the tolerance: the record keeps both limits.

A comparison is *at plateau* when its segmenter trained at least ``budget`` steps of the same
size (same network, patch size and batch).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import chi2

__all__ = ["PlateauBudget", "Steadiness", "mean_curve", "plateau_budget", "tail_steadiness"]


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
        noise_sd: the measure's own standard deviation per evaluation (0: not given).
        rise_limit: the largest rise that counts as flat: ``max(tolerance, 2 x the standard
            error of the rise)`` (the tolerance when ``noise_sd`` is 0).
    """

    budget: int
    plateau: float
    flattened: bool
    rise: float
    steps: tuple[int, ...]
    smoothed: tuple[float, ...]
    tolerance: float
    noise_sd: float = 0.0
    rise_limit: float | None = None

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
    noise_sd: float = 0.0,
) -> PlateauBudget:
    """The plateau budget of one curve (see the module docstring).

    Args:
        steps: evaluated steps, strictly ascending.
        values: the metric at those steps (higher is better).
        tolerance: how close to the plateau counts as reached (AJI 0.01 by default).
        window: trailing-mean width in evaluations (1 = no smoothing).
        tail: fraction of the evaluations (at least ``window``) that defines the plateau.
        noise_sd: standard deviation of one evaluation of an unchanged model (see the
            module docstring); 0 treats every evaluation as exact.
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
    _check_noise_sd(noise_sd)
    kernel = np.ones(window) / window
    smoothed = np.convolve(values_array, kernel, mode="full")[: len(values_array)]
    smoothed[: window - 1] = [values_array[: k + 1].mean() for k in range(window - 1)]
    n_tail = max(window, int(round(tail * len(smoothed))))
    tail_values = smoothed[-n_tail:]
    plateau = float(tail_values.mean())
    tail_steps = steps_array[-n_tail:].astype(np.float64)
    slope = np.polyfit(tail_steps, values_array[-n_tail:], 1)[0]
    rise = float(slope * (tail_steps[-1] - tail_steps[0]))
    rise_limit = max(tolerance, 2 * _rise_standard_error(tail_steps, noise_sd))
    reached = np.nonzero(smoothed >= plateau - tolerance)[0]
    return PlateauBudget(
        budget=int(steps_array[reached[0]]),
        plateau=plateau,
        flattened=rise <= rise_limit,
        rise=rise,
        steps=tuple(int(s) for s in steps_array),
        smoothed=tuple(float(v) for v in smoothed),
        tolerance=tolerance,
        noise_sd=float(noise_sd),
        rise_limit=float(rise_limit),
    )


def _check_noise_sd(noise_sd: float) -> None:
    if not (math.isfinite(noise_sd) and noise_sd >= 0):
        raise ValueError(f"noise_sd must be finite and at least 0, got {noise_sd}")


def _rise_standard_error(steps: np.ndarray, noise_sd: float) -> float:
    """Standard error of the least-squares rise ``slope x (steps[-1] - steps[0])`` when each
    value carries independent noise of standard deviation ``noise_sd``."""
    spread = float(((steps - steps.mean()) ** 2).sum())
    return noise_sd * float(steps[-1] - steps[0]) / math.sqrt(spread)


@dataclass(frozen=True)
class Steadiness:
    """Result of :func:`tail_steadiness`.

    Attributes:
        tail_sd: sample standard deviation of the tail's raw values.
        settled: ``tail_sd <= limit``.
        limit: ``max(tolerance, noise_sd x sqrt(chi2_0.95(n - 1) / (n - 1)))`` for a tail of
            ``n`` values: the largest spread that stays within the tolerance or that
            re-measuring an unchanged model gives in 95% of tails.
        by_noise: settled only because the measure's noise allows the spread (``tail_sd``
            above the tolerance).
    """

    tail_sd: float
    settled: bool
    limit: float
    by_noise: bool


def tail_steadiness(
    values: Sequence[float], tolerance: float, noise_sd: float = 0.0, tail: float = 1 / 3
) -> Steadiness:
    """Whether a curve's tail (its last ``tail`` of evaluations, at least 3) stays within the
    tolerance: a curve without a trend can still jump between evaluations by far more than the
    tolerance, and then its plateau is a mean of jumps, not a converged value. With the
    measure's noise given, a tail that spreads no more than that noise explains counts as
    settled too (``by_noise``)."""
    values_array = np.asarray(values, dtype=np.float64)
    n_tail = max(3, int(round(tail * len(values_array))))
    if len(values_array) < n_tail:
        raise ValueError(f"a tail needs at least {n_tail} values, got {len(values_array)}")
    _check_noise_sd(noise_sd)
    sd = float(values_array[-n_tail:].std(ddof=1))
    noise_limit = noise_sd * math.sqrt(chi2.ppf(0.95, n_tail - 1) / (n_tail - 1))
    limit = max(tolerance, noise_limit)
    return Steadiness(
        tail_sd=sd, settled=sd <= limit, limit=float(limit), by_noise=tolerance < sd <= limit
    )
