"""Hou et al. 2017 (arXiv:1712.05021) §3-4, Algorithm 1: the S+U refiner with on-the-fly hard
examples, trained jointly with the segmenter R it makes data for.

G(I, S) refines an initial synthetic patch I (``histo-gan synthesize --method hou``) in the
style of a real reference patch S; D(X, S) tells real pairs <S', S> from fake pairs <X, S>
per location; R segments refined patches with the initial masks as labels. G minimises
``α·L_reg + β·L_real + γ·L_hard`` with ``L_reg = λ1|I−X|_1 + λ2|I−X|_2²`` and
``L_hard = −L_R``; a history buffer of refined samples supplies half of each D batch. The
phases of Algorithm 1 come from a :class:`~histo_gan.modules.refiner_steps.RefinerSchedule`;
the phase position and the buffer are checkpointed. R is the method's segmenter: validation
and test score it on whole real images with the shared metrics.

Batches: ``HistoDataModule`` with the initial dataset as ``synthetic`` (``synthetic_ratio: 1``),
``reference: same_image`` and ``unpaired_real: true`` (the real pairs). ``predict`` on an
initial dataset (``predict_source``) exports refined patches with their exact initial masks and
weight 1 (:class:`~histo_gan.callbacks.SyntheticExport`).

Where the paper is silent (see also :mod:`~histo_gan.modules.refiner_steps`): loss terms on the
released code's per-sample-sum scale; ``L_real`` non-saturating; R trains on the current
batch's refined patches (the released code also replays buffer samples to R); the buffer holds
the refined patches D has seen; D in eval mode when judging for G; a
:class:`~histo_gan.networks.ReferenceRefiner` starts as the exact identity (zero head, after
``init_weights``): the papers initialise G at random and pre-train it on ``L_reg``, but a
random residual that the short pre-training of small budgets leaves in place moved the
refined stain away from the real patches; D keeps PyTorch's default initialisation, not the
pix2pix-style N(0, 0.02): in front of batch norm the small weights only enlarge Adam's
relative step, and with them D stayed at chance on held-out real pairs, while with the default
init it learns and G, pushed by it, moves the refined stain towards the real patches'
(benchmarks/hou_refiner_learning.py).
"""

from __future__ import annotations

from collections.abc import Mapping

import lightning as L
import torch
from lightning.pytorch.cli import OptimizerCallable
from torch import nn

from histo_gan.inference.tiling import SlidingWindow
from histo_gan.metrics.postprocess import InstancePostprocessor
from histo_gan.modules.evaluation import (
    Predictor,
    Segment,
    SegmenterEvaluation,
    SynthesizeImages,
    WholeImageEvaluator,
)
from histo_gan.modules.gan_steps import make_optimizer, optimize
from histo_gan.modules.refiner_steps import (
    DISCRIMINATOR,
    SEGMENTER,
    RefinedHistory,
    RefinerBatch,
    RefinerSchedule,
    discriminator_objective,
    export_pair,
    generator_objective,
    sample_rows,
)
from histo_gan.modules.schedules import ConstantRate
from histo_gan.modules.segmentation_head import SegmentationHead
from histo_gan.modules.state import CheckpointedState
from histo_gan.networks import PairDiscriminator, ReferenceRefiner, init_weights
from histo_gan.types import SynthesisPrediction, TrainBatch, to_unit

__all__ = ["HardExampleRefinerModule"]

NETWORK_ARGS = ["refiner", "discriminator", "segmentation_head", "sliding_window", "postprocess",
                "predictor", "schedule", "generator_optimizer", "discriminator_optimizer",
                "segmenter_optimizer", "lr_schedule"]  # fmt: skip


class HardExampleRefinerModule(SegmenterEvaluation, CheckpointedState, L.LightningModule):
    """G, D and R of hou2017 trained by Algorithm 1.

    Args:
        refiner: G, ``(initial, reference)`` in [-1, 1] ``(B, 3, H, W)`` -> refined, same shape
            and range (default: :class:`~histo_gan.networks.ReferenceRefiner`, paper size).
        discriminator: D, ``(x, reference)`` -> per-location logits (default:
            :class:`~histo_gan.networks.PairDiscriminator`). ``use_reference: false`` on both
            networks is the "no reference" ablation.
        segmentation_head: R (default: :class:`~histo_gan.modules.SegmentationHead`, smp U-Net).
        alpha, beta, gamma, lambda_l1, lambda_l2: loss weights (hou2017 §6.1: 1, 0.7, 1e-4,
            1e-3, 1e-2). ``gamma: 0`` is the "no hard examples" ablation.
        schedule: Algorithm 1's counts (default: the released code's, 97 000 batches).
        history_size: capacity of the history buffer, samples (the released code keeps 64 000
            75-px triples; 1000 keeps 200-px patches within a few GB).
        generator_optimizer, discriminator_optimizer, segmenter_optimizer: optimizer factories
            (default: Adam 2e-4, betas (0.5, 0.999); the paper configs use the released ones).
        gradient_clip_norm: clip each network's gradient norm (released code: 50; ``None``: off).
        lr_schedule: learning-rate schedule over the budget (default: constant).
        sliding_window, postprocess: evaluation of R on whole images.
        predictor: what ``predict`` does (default: export refined patches).
    """

    def __init__(
        self,
        refiner: nn.Module | None = None,
        discriminator: nn.Module | None = None,
        segmentation_head: SegmentationHead | None = None,
        alpha: float = 1.0,
        beta: float = 0.7,
        gamma: float = 1e-4,
        lambda_l1: float = 1e-3,
        lambda_l2: float = 1e-2,
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
        super().__init__()
        self.automatic_optimization = False
        self.save_hyperparameters(ignore=NETWORK_ARGS)
        self.G = init_weights(refiner or ReferenceRefiner())
        if isinstance(self.G, ReferenceRefiner):
            self.G.zero_residual()
        # D keeps PyTorch's default init: behind batch norm, N(0, 0.02) weights only inflate
        # Adam's relative step, and D stayed at chance on real data (see the module docstring).
        self.D = discriminator or PairDiscriminator()
        self.R = segmentation_head or SegmentationHead()
        self.phases = (schedule or RefinerSchedule()).build()
        self.history = RefinedHistory(history_size)
        self.register_state("phases", self.phases)
        self.register_state("history", self.history)
        self.optimizer_factories = (generator_optimizer, discriminator_optimizer,
                                    segmenter_optimizer)  # fmt: skip
        self.lr_schedule = lr_schedule or ConstantRate()
        self.evaluator = WholeImageEvaluator(sliding_window, postprocess)
        self.predictor = predictor or SynthesizeImages()

    # -- inference -------------------------------------------------------------------------
    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """H&E ``(B, 3, H, W)`` in [0, 1] -> R's class probabilities ``(B, 3, H, W)``."""
        return self.R.probabilities(image)

    def segmenter(self) -> Segment:
        return self.R.probabilities

    @torch.no_grad()
    def synthesize(self, batch: Mapping) -> SynthesisPrediction:
        """Initial patches ``image`` ``(B, 3, H, W)`` in [0, 1] (+ optional ``reference``) ->
        refined patches in [0, 1], the exact initial ``label`` maps, weight 1."""
        refined, reference = export_pair(self.G, batch)
        return {"image": to_unit(refined), "label": batch["label"],
                "image_id": list(batch["image_id"]),
                "weight": self.export_weights(refined, reference)}  # fmt: skip

    def export_weights(self, refined: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        """Per-sample weights of exported patches, ``(B,)``: 1 here."""
        return torch.ones(len(refined), device=refined.device)

    def segmenter_loss(
        self, data: RefinerBatch, refined: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """R's loss on the refined synthetic (and any real) items with the batch weights."""
        return self.R.loss(data.for_segmenter(refined), data.label, data.weight), {}

    # -- training --------------------------------------------------------------------------
    def training_step(self, batch: TrainBatch, batch_idx: int) -> None:
        optimizers = self.optimizers()
        opt_g, opt_d, opt_r = optimizers
        lr_factor = self.lr_schedule.apply(optimizers, self.trainer)
        phase, clip = self.phases.phase, self.hparams.gradient_clip_norm
        data = RefinerBatch.from_batch(batch)
        if phase in (DISCRIMINATOR, SEGMENTER):
            with torch.no_grad():
                refined = self.G(data.initial, data.reference)
        if phase == DISCRIMINATOR:
            loss, logs = discriminator_objective(refined, data, self.D, self.history)
            optimize(self, opt_d, loss, clip)
        elif phase == SEGMENTER:
            loss, logs = self.segmenter_loss(data, refined)
            optimize(self, opt_r, loss, clip)
        else:
            refined = self.G(data.initial, data.reference)
            loss, logs = generator_objective(refined, data, self.D, self.R, phase, self.hparams)
            optimize(self, opt_g, loss, clip)
        self.phases.advance()
        logs = {f"train/{phase}/{k}": v.detach() for k, v in {"loss": loss, **logs}.items()}
        self.log_dict({**logs, "train/phase_position": float(self.phases.position),
                       "train/lr_factor": lr_factor}, batch_size=len(data.initial))  # fmt: skip

    def configure_optimizers(self):
        factories = self.optimizer_factories
        networks = (self.G, self.D, self.R)
        return [make_optimizer(f, n.parameters()) for f, n in zip(factories, networks)]

    def sample_images(self, batch: TrainBatch) -> dict[str, torch.Tensor]:
        """Rows of the sample grid: initial | refined | reference | mask outline."""
        return sample_rows(self.G, batch)
