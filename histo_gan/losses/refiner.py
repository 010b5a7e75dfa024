"""The S+U refiner's adversarial terms on the released code's scale (Hou et al. 2017, 2019).

The papers' loss weights were tuned in the authors' released code, which *sums* every term over
discriminator locations; these terms keep that scale: summed per sample, averaged over the
batch. ``L_real`` is the non-saturating ``-log D(X, S)`` (released code; the papers write
``log(1 - D)``). Means over the synthetic items of a batch use :func:`masked_mean`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["masked_mean", "refiner_discriminator_loss", "refiner_realism_loss"]


def masked_mean(values: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``sum(w * v) / max(sum(w), 1)``: a batch mean over the weighted (e.g. synthetic) items.

    Items with weight 0 still take part in the graph, so every process of a DDP run does the
    same backward whatever its mix of items.
    """
    return (values * weight).sum() / weight.sum().clamp_min(1.0)


def refiner_realism_loss(logits: torch.Tensor) -> torch.Tensor:
    """G's ``L_real`` per sample: ``-log D`` summed over D's locations, ``(B,)`` float32."""
    return F.softplus(-logits.float()).flatten(1).sum(dim=1)


def refiner_discriminator_loss(
    real_logits: torch.Tensor, fake_logits: torch.Tensor, fake_weight: torch.Tensor
) -> torch.Tensor:
    """``L_D = -log D(S', S) - log(1 - D(X, S))``, summed over locations, batch means
    (fake pairs weighted by ``fake_weight`` ``(B_fake,)``, 0 for non-synthetic items)."""
    real = F.softplus(-real_logits.float()).flatten(1).sum(dim=1).mean()
    fake = F.softplus(fake_logits.float()).flatten(1).sum(dim=1)
    return real + masked_mean(fake, fake_weight)
