"""Training noise of a comparison: how much of a paired difference comes from the seeds.

A test metric on image ``i`` in the run of seed ``s`` of one arm is modelled as::

    y_si = m_i + u_s + e_si

``m_i``: the arm's expected value on the image; ``u_s``: a shift shared by every image of one
training run (the seed's draw of weights and patches), variance ``s_u^2``; ``e_si``: the rest
of the training noise, image by image, variance ``s_e^2``. For an arm against its reference
on the same ``I`` test images, with ``S_a`` and ``S_r`` seeds, the paired difference of the
report (per image, the difference of the seed means; then the mean over images) has::

    Var(D) = s_img^2 / I + s_e^2 (1/S_a + 1/S_r) / I + s_u^2 (1/S_a + 1/S_r)

``s_img^2``: the spread over images of the arm's true per-image effect. A bootstrap over the
images measures the first two terms; the third, a shift shared by all images, it leaves out.

Estimates by the method of moments, from every arm with two or more seeds (``w``: the mean
over images of the across-seed variance, ``= s_u^2 + s_e^2``; ``v``: the variance of the
seeds' image means, ``= s_u^2 + s_e^2 / I``), pooled with weights ``seeds - 1`` (one
segmenter at one budget in every arm: a protocol's premise)::

    s_e^2 = (w - v) I / (I - 1)        s_u^2 = max(v - s_e^2 / I, 0)

Values are in the metric's units (AJI, Dice, ...); variances in those units squared.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import norm

__all__ = [
    "ALPHA",
    "POWER",
    "TrainingNoise",
    "arm_components",
    "detectable",
    "difference_variance",
    "pooled_noise",
]

POWER, ALPHA = 0.8, 0.05


@dataclass(frozen=True)
class TrainingNoise:
    """Pooled training-noise variances of one metric."""

    shared: float  # s_u^2: a run's shift common to all its images
    per_image: float  # s_e^2: the rest, image by image
    arms: int  # arms with two or more seeds that were pooled
    degrees_of_freedom: int  # sum of (seeds - 1)


def arm_components(values: np.ndarray) -> tuple[float, float]:
    """``(s_u^2, s_e^2)`` of one arm from its ``(seeds, images)`` values (two or more of
    each), by the method of moments of the module docstring."""
    n_seeds, n_images = values.shape
    if n_seeds < 2 or n_images < 2:
        raise ValueError(f"need two or more seeds and images, got {values.shape}")
    within = float(values.var(axis=0, ddof=1).mean())
    of_means = float(values.mean(axis=1).var(ddof=1))
    per_image = max((within - of_means) * n_images / (n_images - 1), 0.0)
    return max(of_means - per_image / n_images, 0.0), per_image


def pooled_noise(matrices: list[np.ndarray]) -> TrainingNoise:
    """Components of every ``(seeds, images)`` matrix with two or more seeds, pooled with
    weights ``seeds - 1``; ValueError when there is none."""
    usable = [m for m in matrices if m.shape[0] >= 2]
    if not usable:
        raise ValueError("no arm has two or more seeds: the training noise cannot be estimated")
    weights = np.array([m.shape[0] - 1 for m in usable], dtype=float)
    parts = np.array([arm_components(m) for m in usable])
    shared, per_image = (weights @ parts) / weights.sum()
    return TrainingNoise(float(shared), float(per_image), len(usable), int(weights.sum()))


def difference_variance(
    image_spread: float, noise: TrainingNoise, images: int, seeds_arm: int, seeds_reference: int
) -> tuple[float, float]:
    """``(images part, shared-shift part)`` of ``Var(D)`` for a design; ``image_spread`` is
    ``s_img^2``."""
    per_run = 1 / seeds_arm + 1 / seeds_reference
    return (image_spread + noise.per_image * per_run) / images, noise.shared * per_run


def detectable(variance: float) -> float:
    """Smallest true difference found with power ``POWER`` by a two-sided test at ``ALPHA``,
    for an estimate of that ``variance``: ``(z_0.975 + z_0.8) * sqrt(variance)``."""
    return float((norm.ppf(1 - ALPHA / 2) + norm.ppf(POWER)) * math.sqrt(variance))
