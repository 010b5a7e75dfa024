"""Hou et al. 2019 (CVPR, "Robust Histopathology Image Analysis: to Label or to Synthesize?")
§3-4: the reference-conditioned refiner whose discriminator importance-weights each refined
patch in the segmenter's loss.

Same networks, data and phases as :class:`~histo_gan.modules.HardExampleRefinerModule` (the
2019 paper builds on the same released code), with hou2019's loss weights (§4.2: α 1, β 1,
γ 1e-7, λ1 1e-5, λ2 1e-4) and one change in R's step: a synthetic sample's loss is multiplied
by ``w = c·p/(1−p)`` (Eq. 5), ``p`` = D's probability (mean over its locations) that the
refined patch X is real in the style of its reference S, computed without gradient (D in eval
mode), clipped to ``clip`` and divided by the mean over the batch's synthetic samples. Real
labeled items of a ``synthetic_ratio < 1`` batch (the "real + synthetic" ablation) are not
refined and keep their own weight. The weights are logged as a histogram (TensorBoard) every
``histogram_every_n_steps`` batches and as mean/min/max scalars at every R step.

Ablations (hou2019 Tab. 3) by configuration: ``importance_weighting: false``;
``use_reference: false`` on G and D; ``gamma: 0``; ``data.synthetic_ratio < 1``.

Papers silent: c = 1 (D's batches hold as many fake as real pairs), clip [0.2, 2] (released
code, which does not normalise; normalising keeps R's effective learning rate); γ = 1e-7 (§4.2
also says "down-weight L_hard by 0.0001", the released code uses 1e-7). Exported weights are
``c·p/(1−p)`` clipped, not normalised (a predict batch holds one sample); the segmenter's loss
normalises weights within its batches.
"""

from __future__ import annotations

import torch
from lightning.pytorch.cli import OptimizerCallable
from torch import nn

from histo_gan.inference.tiling import SlidingWindow
from histo_gan.losses import importance_weights, real_probability
from histo_gan.metrics.postprocess import InstancePostprocessor
from histo_gan.modules.evaluation import Predictor
from histo_gan.modules.hou_hard_examples import HardExampleRefinerModule
from histo_gan.modules.refiner_steps import (
    RefinerBatch,
    RefinerSchedule,
    eval_mode,
    masked_mean,
)
from histo_gan.modules.schedules import ConstantRate
from histo_gan.modules.segmentation_head import SegmentationHead

__all__ = ["ImportanceSamplingRefinerModule", "segmenter_weights"]


def segmenter_weights(
    probability: torch.Tensor,
    data: RefinerBatch,
    c: float = 1.0,
    clip: tuple[float, float] | None = (0.2, 2.0),
    enabled: bool = True,
) -> torch.Tensor:
    """R's per-sample weights ``(B,)``: importance weights of the synthetic items from D's
    probabilities ``probability`` ``(B,)`` (clipped, normalised to mean 1 over the synthetic
    items), the batch's own weight for real items; the batch weights alone when not
    ``enabled``. Detached."""
    if not enabled:
        return data.weight
    w = importance_weights(probability, c=c, clip=clip, normalize=False)
    w = w / masked_mean(w, data.synthetic).clamp_min(torch.finfo(w.dtype).tiny)
    return torch.where(data.synthetic.bool(), w, data.weight)


class ImportanceSamplingRefinerModule(HardExampleRefinerModule):
    """hou2019: :class:`HardExampleRefinerModule` with importance-weighted R and 2019 weights.

    Args (beyond :class:`HardExampleRefinerModule`'s, whose loss-weight defaults become
    hou2019's):
        importance_weighting: weight R's synthetic samples by D (``false``: the ablation).
        importance_c: c of Eq. 5.
        importance_clip: ``(lo, hi)`` clip of ``c·p/(1−p)``; ``null`` for none.
        histogram_every_n_steps: training batches between two weight histograms.
    """

    def __init__(
        self,
        refiner: nn.Module | None = None,
        discriminator: nn.Module | None = None,
        segmentation_head: SegmentationHead | None = None,
        alpha: float = 1.0,
        beta: float = 1.0,
        gamma: float = 1e-7,
        lambda_l1: float = 1e-5,
        lambda_l2: float = 1e-4,
        importance_weighting: bool = True,
        importance_c: float = 1.0,
        importance_clip: tuple[float, float] | None = (0.2, 2.0),
        histogram_every_n_steps: int = 50,
        schedule: RefinerSchedule | None = None,
        history_size: int = 1000,
        generator_optimizer: OptimizerCallable | None = None,
        discriminator_optimizer: OptimizerCallable | None = None,
        segmenter_optimizer: OptimizerCallable | None = None,
        gradient_clip_norm: float | None = None,
        lr_schedule: ConstantRate | None = None,
        sliding_window: SlidingWindow | None = None,
        postprocess: InstancePostprocessor | None = None,
        predictor: Predictor | None = None,
    ) -> None:
        super().__init__(refiner, discriminator, segmentation_head, alpha, beta, gamma,
                         lambda_l1, lambda_l2, schedule, history_size, generator_optimizer,
                         discriminator_optimizer, segmenter_optimizer, gradient_clip_norm,
                         lr_schedule, sliding_window, postprocess, predictor)  # fmt: skip
        self._next_histogram = 0

    @torch.no_grad()
    def real_probability(self, refined: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        """D's probability ``(B,)`` that each refined patch is real (eval mode, no gradient)."""
        with eval_mode(self.D):
            return real_probability(self.D(refined, reference))

    def export_weights(self, refined: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        """``c·p/(1−p)`` clipped (not normalised); 1 without importance weighting."""
        h = self.hparams
        if not h.importance_weighting:
            return super().export_weights(refined, reference)
        p = self.real_probability(refined, reference)
        return importance_weights(p, h.importance_c, h.importance_clip, normalize=False)

    def segmenter_loss(
        self, data: RefinerBatch, refined: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """R's loss with each sample's loss multiplied by its (detached) weight."""
        h = self.hparams
        p = self.real_probability(refined, data.reference)
        weight = segmenter_weights(p, data, h.importance_c, h.importance_clip,
                                   h.importance_weighting)  # fmt: skip
        loss = self.R.loss(data.for_segmenter(refined.detach()), data.label, weight)
        synthetic = weight[data.synthetic.bool()]
        if len(synthetic):
            self._log_histogram(synthetic)
            return loss, {"weight_mean": synthetic.mean(), "weight_min": synthetic.min(),
                          "weight_max": synthetic.max()}  # fmt: skip
        return loss, {}

    def _log_histogram(self, weights: torch.Tensor) -> None:
        if self._trainer is None or self.phases.position < self._next_histogram:
            return
        self._next_histogram = self.phases.position + self.hparams.histogram_every_n_steps
        for logger in self.loggers:
            experiment = getattr(logger, "experiment", None)
            if hasattr(type(experiment), "add_histogram"):  # TensorBoard's SummaryWriter
                experiment.add_histogram("train/importance_weight", weights, self.global_step)
