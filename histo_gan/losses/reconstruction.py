"""Reconstruction terms of the image-translation GANs."""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["cycle_loss", "identity_loss", "l1_loss"]


def l1_loss(
    prediction: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean absolute error; with ``weight`` ``(B,)`` the per-sample means are weighted."""
    if weight is None:
        return F.l1_loss(prediction, target)
    per_sample = (prediction - target).abs().flatten(1).mean(dim=1)
    weight = weight.to(per_sample.dtype)
    return (per_sample * weight).sum() / weight.sum().clamp_min(1e-12)


def cycle_loss(reconstructed: torch.Tensor, original: torch.Tensor, weight: float) -> torch.Tensor:
    """``weight * |F(G(x)) - x|_1`` (mean over pixels)."""
    return weight * F.l1_loss(reconstructed, original)


def identity_loss(
    mapped: torch.Tensor, original: torch.Tensor, cycle_weight: float, identity_weight: float
) -> torch.Tensor:
    """CycleGAN's identity term ``identity_weight * cycle_weight * |G(y) - y|_1``: the identity
    weight is relative to the cycle weight of the same domain."""
    return identity_weight * cycle_weight * F.l1_loss(mapped, original)
