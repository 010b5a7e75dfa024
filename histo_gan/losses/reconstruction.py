"""Reconstruction terms of the image-translation GANs and the Hou refiners."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

__all__ = [
    "cycle_loss",
    "foreground_weighted_l1",
    "identity_loss",
    "l1_loss",
    "refiner_regularization",
]


def _weighted_mean(per_sample: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    """The batch mean of ``per_sample`` ``(B,)``, weighted by ``weight`` ``(B,)`` when given."""
    if weight is None:
        return per_sample.mean()
    weight = weight.to(per_sample.dtype)
    return (per_sample * weight).sum() / weight.sum().clamp_min(1e-12)


def l1_loss(
    prediction: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean absolute error; with ``weight`` ``(B,)`` the per-sample means are weighted."""
    if weight is None:
        return F.l1_loss(prediction, target)
    return _weighted_mean((prediction - target).abs().flatten(1).mean(dim=1), weight)


def foreground_weighted_l1(
    prediction: torch.Tensor,
    target: torch.Tensor,
    foreground: torch.Tensor,
    foreground_weight: float = 1.0,
    weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """L1 with nucleus pixels (``foreground`` ``(B, H, W)``) counted ``foreground_weight`` times.

    Per sample the weighted mean over pixels and channels; ``weight`` ``(B,)`` then weights the
    samples (importance weights). ``foreground_weight=1`` is :func:`l1_loss`.
    """
    if foreground_weight == 1.0:
        return l1_loss(prediction, target, weight)
    pixel = 1.0 + (foreground_weight - 1.0) * foreground[:, None].to(prediction.dtype)
    pixel = pixel.expand_as(prediction)
    per_sample = ((prediction - target).abs() * pixel).flatten(1).sum(1) / pixel.flatten(1).sum(1)
    return _weighted_mean(per_sample, weight)


def cycle_loss(reconstructed: torch.Tensor, original: torch.Tensor, weight: float) -> torch.Tensor:
    """``weight * |F(G(x)) - x|_1`` (mean over pixels)."""
    return weight * F.l1_loss(reconstructed, original)


def identity_loss(
    mapped: torch.Tensor, original: torch.Tensor, cycle_weight: float, identity_weight: float
) -> torch.Tensor:
    """CycleGAN's identity term ``identity_weight * cycle_weight * |G(y) - y|_1``: the identity
    weight is relative to the cycle weight of the same domain."""
    return identity_weight * cycle_weight * F.l1_loss(mapped, original)


def refiner_regularization(
    refined: torch.Tensor,
    initial: torch.Tensor,
    l1_weight: float,
    l2_weight: float,
    reduction: Literal["mean", "sum", "none"] = "mean",
) -> torch.Tensor:
    """The refiner's elastic-net term ``l1_weight * |I - X|_1 + l2_weight * |I - X|_2^2``
    (hou2017 Eq. 3, hou2019 §4.2; the L2 term squared as in an elastic net and in the authors'
    released code).

    Args:
        refined, initial: ``(B, C, H, W)`` images on the same scale.
        l1_weight, l2_weight: lambda_1 and lambda_2.
        reduction: ``mean``: both norms are means over all pixels and channels (and the batch);
            ``sum``: sums over each sample's pixels and channels, then the batch mean, the scale
            the released code (and so the papers' lambdas) used; ``none``: those per-sample
            sums, ``(B,)``.

    Returns:
        A scalar tensor, or ``(B,)`` for ``reduction="none"``.
    """
    difference = (refined - initial).float()
    if reduction == "mean":
        return l1_weight * difference.abs().mean() + l2_weight * difference.square().mean()
    if reduction not in ("sum", "none"):
        raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    flat = difference.flatten(1)
    per_sample = l1_weight * flat.abs().sum(dim=1) + l2_weight * flat.square().sum(dim=1)
    return per_sample if reduction == "none" else per_sample.mean()
