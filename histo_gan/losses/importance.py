"""Importance weights of synthetic samples from a discriminator (hou2019 §3, Eq. 5).

With c the ratio of synthetic to real inputs D was trained on, Bayes' theorem turns D's
probability p = Pr(X ~ real | X) into the density ratio p_real(X) / p_synthetic(X) = c·p/(1−p);
multiplying a synthetic sample's task loss by it makes the expected loss an unbiased estimate
of the loss over real data.
"""

from __future__ import annotations

import torch

from histo_gan.losses.refiner import masked_mean

__all__ = ["ImportanceWeighting", "importance_weights", "real_probability"]


def real_probability(logits: torch.Tensor) -> torch.Tensor:
    """D's per-sample probability that X is real: the mean over D's locations of the sigmoid.

    Averaging probabilities (not logits) follows the authors' released code, which averages
    D's per-location softmax over the grid.

    Args:
        logits: ``(B, ...)`` raw per-location logits, e.g. ``(B, 1, h, w)``.

    Returns:
        ``(B,)`` float32 in [0, 1], still attached to the graph (``importance_weights``
        detaches).
    """
    return torch.sigmoid(logits.float()).flatten(1).mean(dim=1)


def importance_weights(
    real_probability: torch.Tensor,
    c: float = 1.0,
    clip: tuple[float, float] | None = (0.2, 2.0),
    eps: float = 1e-6,
) -> torch.Tensor:
    """Per-sample importance weights ``w = c·p/(1−p)``, detached and clipped.

    Args:
        real_probability: ``(B,)`` D's probability that each sample is real, in [0, 1]
            (see :func:`real_probability`); a ``(B, ...)`` map is averaged per sample first.
        c: ratio of synthetic to real samples in D's training batches (hou2019 Eq. 4-5).
        clip: ``(lo, hi)`` bounds of ``c·p/(1−p)`` (the released code clips to [0.2, 2]);
            ``None`` for no clipping.
        eps: floor of ``1 − p`` so that p = 1 gives a large finite weight, not inf.

    Returns:
        ``(B,)`` float32, no gradient (no gradient can reach D or G through the weights).
    """
    if clip is not None and not 0.0 <= clip[0] <= clip[1]:
        raise ValueError(f"clip must be (lo, hi) with 0 <= lo <= hi, got {clip}")
    p = real_probability.detach().float()
    if p.dim() > 1:
        p = p.flatten(1).mean(dim=1)
    p = p.clamp(0.0, 1.0)
    weights = c * p / (1.0 - p).clamp_min(eps)
    if clip is not None:
        weights = weights.clamp(clip[0], clip[1])
    return weights


class ImportanceWeighting:
    """hou2019's weighting of the segmenter's samples by D (Eq. 5), from D's probabilities.

    Args:
        c: ratio of synthetic to real samples in D's training batches.
        clip: ``(lo, hi)`` bounds of ``c·p/(1−p)``; ``None`` for none.
    """

    def __init__(self, c: float = 1.0, clip: tuple[float, float] | None = (0.2, 2.0)) -> None:
        self.c, self.clip = c, clip

    def for_export(self, probability: torch.Tensor) -> torch.Tensor:
        """Weights stored with exported samples, ``(B,)``: ``c·p/(1−p)`` clipped, not
        normalised (a predict batch may hold a single sample)."""
        return importance_weights(probability, self.c, self.clip)

    def for_segmenter(
        self, probability: torch.Tensor, synthetic: torch.Tensor, weight: torch.Tensor
    ) -> torch.Tensor:
        """R's per-sample weights ``(B,)``: the clipped weights of the synthetic items
        (``synthetic`` ``(B,)`` 1/0) divided by their mean over the batch's synthetic items, so
        they change the mix of samples, not R's learning rate; real items keep their ``weight``.
        Detached."""
        w = importance_weights(probability, self.c, self.clip)
        w = w / masked_mean(w, synthetic).clamp_min(torch.finfo(w.dtype).tiny)
        return torch.where(synthetic.bool(), w, weight)
