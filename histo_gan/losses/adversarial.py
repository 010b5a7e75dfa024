"""Adversarial losses with one interface for both players.

Each loss has ``discriminator_loss(real_logits, fake_logits)`` and
``generator_loss(fake_logits)``. Logits may be a tensor, or a list of tensors (one per
discriminator scale), or a list of lists whose last entry is the logit (a multiscale
discriminator that also returns intermediate features, as pix2pixHD's): the loss is
averaged over scales.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["GANLoss", "HingeGANLoss", "LSGANLoss", "VanillaGANLoss", "WassersteinGANLoss"]

Logits = torch.Tensor | Sequence[torch.Tensor] | Sequence[Sequence[torch.Tensor]]


def _scales(logits: Logits) -> list[torch.Tensor]:
    if isinstance(logits, torch.Tensor):
        return [logits]
    return [scale[-1] if isinstance(scale, list | tuple) else scale for scale in logits]


def _mean_over_scales(fn: Callable[[torch.Tensor], torch.Tensor], logits: Logits) -> torch.Tensor:
    scales = _scales(logits)
    return sum(fn(s.float()) for s in scales) / len(scales)


class GANLoss(nn.Module):
    """Base: subclasses define the per-scale ``_real``/``_fake`` terms of D and ``_generator``."""

    def _real(self, logits: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _fake(self, logits: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _generator(self, logits: torch.Tensor) -> torch.Tensor:
        return self._real(logits)

    def discriminator_loss(self, real_logits: Logits, fake_logits: Logits) -> torch.Tensor:
        """D's loss: real samples should score as real, fakes as fake (sum of both terms)."""
        return _mean_over_scales(self._real, real_logits) + _mean_over_scales(
            self._fake, fake_logits
        )

    def generator_loss(self, fake_logits: Logits) -> torch.Tensor:
        """G's loss: fakes should score as real."""
        return _mean_over_scales(self._generator, fake_logits)


class VanillaGANLoss(GANLoss):
    """Binary cross-entropy on logits (Goodfellow et al.; non-saturating generator loss)."""

    def _real(self, logits):
        return F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))

    def _fake(self, logits):
        return F.binary_cross_entropy_with_logits(logits, torch.zeros_like(logits))


class LSGANLoss(GANLoss):
    """Least squares (Mao et al.): ``(D(x) - 1)^2`` for real, ``D(x)^2`` for fake."""

    def _real(self, logits):
        return ((logits - 1.0) ** 2).mean()

    def _fake(self, logits):
        return (logits**2).mean()


class HingeGANLoss(GANLoss):
    """Hinge loss: D minimises ``relu(1 - D(real)) + relu(1 + D(fake))``; G ``-D(fake)``."""

    def _real(self, logits):
        return F.relu(1.0 - logits).mean()

    def _fake(self, logits):
        return F.relu(1.0 + logits).mean()

    def _generator(self, logits):
        return -logits.mean()


class WassersteinGANLoss(GANLoss):
    """Wasserstein critic loss ``D(fake) - D(real)``; G ``-D(fake)``. Pair with a gradient penalty."""

    def _real(self, logits):
        return -logits.mean()

    def _fake(self, logits):
        return logits.mean()

    def _generator(self, logits):
        return -logits.mean()
