"""Segmentation losses with per-sample weights (importance sampling of synthetic data)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["CrossEntropyDiceLoss"]


class CrossEntropyDiceLoss(nn.Module):
    """``ce_weight * CE + dice_weight * (1 - soft Dice)``, each per sample, then weighted.

    Soft Dice is the mean over the foreground classes ``1..C-1`` of
    ``(2 * sum(p * t) + smooth) / (sum(p) + sum(t) + smooth)`` per sample.

    Args:
        ce_weight, dice_weight: weights of the two terms.
        smooth: additive smoothing of the Dice ratio.

    Call:
        logits: ``(B, C, H, W)`` float; target: ``(B, H, W)`` int64 in ``0..C-1``;
        sample_weight: optional ``(B,)`` float (normalised here to mean 1 over the batch,
        so weights change the mix of samples, not the learning rate).
    """

    def __init__(self, ce_weight: float = 1.0, dice_weight: float = 1.0, smooth: float = 1.0):
        super().__init__()
        self.ce_weight, self.dice_weight, self.smooth = ce_weight, dice_weight, smooth

    def per_sample(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Unweighted loss of each sample, ``(B,)``."""
        ce = F.cross_entropy(logits.float(), target, reduction="none").mean(dim=(1, 2))
        probabilities = logits.float().softmax(dim=1)[:, 1:]
        one_hot = F.one_hot(target, logits.shape[1]).permute(0, 3, 1, 2)[:, 1:].float()
        intersection = (probabilities * one_hot).sum(dim=(2, 3))
        total = probabilities.sum(dim=(2, 3)) + one_hot.sum(dim=(2, 3))
        dice = ((2 * intersection + self.smooth) / (total + self.smooth)).mean(dim=1)
        return self.ce_weight * ce + self.dice_weight * (1.0 - dice)

    def forward(
        self, logits: torch.Tensor, target: torch.Tensor, sample_weight: torch.Tensor | None = None
    ) -> torch.Tensor:
        losses = self.per_sample(logits, target)
        if sample_weight is None:
            return losses.mean()
        weight = sample_weight.to(losses.dtype)
        return (losses * weight).sum() / weight.sum().clamp_min(1e-12)
