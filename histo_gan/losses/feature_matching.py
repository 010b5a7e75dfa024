"""pix2pixHD's discriminator feature-matching loss (Wang et al. 2018, eq. 4)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["FeatureMatchingLoss"]

MultiscaleFeatures = Sequence[Sequence[torch.Tensor]]


class FeatureMatchingLoss(nn.Module):
    """``weight * mean over scales of (mean over layers of L1(D_k(fake), D_k(real)))``.

    Inputs are a multiscale discriminator's outputs (see
    :class:`~histo_gan.networks.MultiscaleDiscriminator`): per scale, a list of intermediate
    features with the logits last. The logits are skipped. Returns a float32 scalar; 0 when
    the two inputs are equal.

    The real features are detached here, so no gradient flows through the real branch. The
    fake branch necessarily goes through D; this loss is a generator loss, so **the caller
    freezes D** in the generator step (``LightningModule.toggle_optimizer(opt_g)`` sets
    ``requires_grad=False`` on D's parameters; or ``D.requires_grad_(False)``). Then the
    gradient reaches G only and D's ``.grad`` stays untouched.

    Args:
        weight: lambda of the term (10 in pix2pixHD and DAFF-GAN). pix2pixHD's code weighs
            each layer by ``4 / (n_layers + 1)``, i.e. 4x the mean used here: use
            ``weight=40`` to reproduce its numbers exactly.
    """

    def __init__(self, weight: float = 10.0) -> None:
        super().__init__()
        self.weight = weight

    def forward(
        self, fake_features: MultiscaleFeatures, real_features: MultiscaleFeatures
    ) -> torch.Tensor:
        if len(fake_features) != len(real_features):
            raise ValueError(
                f"{len(fake_features)} fake scales but {len(real_features)} real scales"
            )
        per_scale = []
        for fake, real in zip(fake_features, real_features):
            if len(fake) != len(real) or len(fake) < 2:
                raise ValueError(
                    "each scale must hold the same number (>= 2) of features, logits last; "
                    f"got {len(fake)} fake and {len(real)} real"
                )
            layers = [
                F.l1_loss(f.float(), r.detach().float()) for f, r in zip(fake[:-1], real[:-1])
            ]
            per_scale.append(torch.stack(layers).mean())
        return self.weight * torch.stack(per_scale).mean()
