"""Hou et al. 2017 (arXiv:1712.05021) §3-4, Algorithm 1: the S+U refiner with on-the-fly hard
examples, trained jointly with the segmenter R it makes data for; with a sample weighting
injected, hou2019 (:mod:`~histo_gan.modules.hou_importance`).

G(I, S) refines an initial synthetic patch I (``histo-gan synthesize --method hou``) in the
style of a real reference patch S; D(X, S) tells real pairs <S', S> from fake pairs <X, S>
per location; R segments refined patches with the initial masks as labels. G minimises
``α·L_reg + β·L_real + γ·L_hard`` with ``L_reg = λ1|I−X|_1 + λ2|I−X|_2²`` and
``L_hard = −L_R``; a replay buffer of refined samples supplies half of each D batch. Each
training batch steps one of G, D, R, as the :class:`~histo_gan.training.phases.RefinerPhases`
plan says; the plan's position and the buffer are checkpointed. R is the method's segmenter:
validation and test score it on whole real images with the shared metrics.

Sample weighting: ``weighting`` (e.g. :class:`~histo_gan.losses.ImportanceWeighting`) turns
D's probability that a refined patch is real into R's per-sample weights and into the weights
of exported patches; without one (``null``, hou2017) R uses the batch's own weights, exports
weigh 1, and D is not run for them.

Batches: ``HistoDataModule`` with the initial dataset as ``synthetic`` (``synthetic_ratio: 1``),
``reference: same_image`` and ``unpaired_real: true`` (the real pairs). ``predict`` on an
initial dataset (``predict_source``) exports refined patches with their exact initial masks
(:class:`~histo_gan.callbacks.SyntheticExport`).

Loss scale: the terms keep the released code's per-sample sums (:mod:`histo_gan.losses.refiner`;
``L_reg`` over pixels and channels, ``L_hard`` as the per-pixel segmentation loss times the
patch area), so the papers' weights mean what they meant there. Batch norm: D is trained on one
batch of real and fake pairs together, and used in eval mode (running statistics) wherever it
judges refined patches for someone else (G's ``L_real``, weights, export), so that a patch's
score does not depend on the other patches of its batch.

Where the paper is silent: ``L_real`` non-saturating; R trains on the current batch's refined
patches (the released code also replays buffer samples to R); the buffer holds the refined
patches D has seen; a :class:`~histo_gan.networks.ReferenceRefiner` starts as the exact
identity (:class:`~histo_gan.networks.IdentityRefinerInit`): the papers initialise G at random
and pre-train it on ``L_reg``, but a random residual that the short pre-training of small
budgets leaves in place moved the refined stain away from the real patches; D keeps PyTorch's
default initialisation (:class:`~histo_gan.networks.TorchDefaultInit`), not the pix2pix-style
N(0, 0.02): in front of batch norm the small weights only enlarge Adam's relative step, and
with them D stayed at chance on held-out real pairs, while with the default init it learns and
G, pushed by it, moves the refined stain towards the real patches'
(benchmarks/hou_refiner_learning.py).
"""

from __future__ import annotations

from collections.abc import Mapping

import lightning as L
import torch
from lightning.pytorch.cli import OptimizerCallable
from torch import nn

from histo_gan.inference.tiling import SlidingWindow
from histo_gan.losses import (
    ImportanceWeighting,
    ReplayBuffer,
    masked_mean,
    real_probability,
    refiner_discriminator_loss,
    refiner_realism_loss,
    refiner_regularization,
)
from histo_gan.metrics.postprocess import InstancePostprocessor
from histo_gan.networks import (
    IdentityRefinerInit,
    PairDiscriminator,
    ReferenceRefiner,
    TorchDefaultInit,
    WeightInit,
)
from histo_gan.networks.norm import eval_mode
from histo_gan.training.evaluation import (
    Predictor,
    Segment,
    SegmenterEvaluation,
    SynthesizeImages,
    WholeImageEvaluator,
)
from histo_gan.training.gan_steps import NamedUpdates
from histo_gan.training.phases import (
    DISCRIMINATOR,
    GENERATOR_HARD,
    GENERATOR_PRETRAIN,
    SEGMENTER,
    RefinerPhases,
)
from histo_gan.training.schedules import ConstantRate
from histo_gan.training.segmentation_head import SegmentationHead
from histo_gan.training.state import CheckpointedState
from histo_gan.training.targets import instance_boundaries
from histo_gan.types import RefinerBatch, SynthesisPrediction, TrainBatch, to_signed, to_unit

__all__ = ["HardExampleRefinerModule"]

COMPONENTS = [
    "refiner",
    "discriminator",
    "segmentation_head",
    "weighting",
    "phases",
    "refiner_init",
    "discriminator_init",
    "generator_optimizer",
    "discriminator_optimizer",
    "segmenter_optimizer",
    "lr_schedule",
    "sliding_window",
    "postprocess",
    "predictor",
]


class HardExampleRefinerModule(
    SegmenterEvaluation, NamedUpdates, CheckpointedState, L.LightningModule
):
    """G, D and R of hou2017 trained by Algorithm 1, with an optional sample weighting.

    Args:
        refiner: G, ``(initial, reference)`` in [-1, 1] ``(B, 3, H, W)`` -> refined, same shape
            and range (default: :class:`~histo_gan.networks.ReferenceRefiner`, paper size).
        discriminator: D, ``(x, reference)`` -> per-location logits (default:
            :class:`~histo_gan.networks.PairDiscriminator`). ``use_reference: false`` on both
            networks is the "no reference" ablation.
        segmentation_head: R (default: :class:`~histo_gan.training.SegmentationHead`, smp U-Net).
        alpha, beta, gamma, lambda_l1, lambda_l2: loss weights (hou2017 §6.1: 1, 0.7, 1e-4,
            1e-3, 1e-2). ``gamma: 0`` is the "no hard examples" ablation.
        weighting: R's and the export's per-sample weights from D's probabilities (``None``:
            none; hou2019: :class:`~histo_gan.losses.ImportanceWeighting`).
        histogram_every_n_steps: training batches between two histograms of R's weights
            (TensorBoard; with a weighting).
        phases: Algorithm 1's counts (default: the released code's, 97 000 batches).
        history_size: capacity of the replay buffer, samples (the released code keeps 64 000
            75-px triples; 1000 keeps 200-px patches within a few GB).
        refiner_init, discriminator_init: weight initialisation of G (default: N(0, 0.02) and
            a zero residual head) and D (default: PyTorch's).
        generator_optimizer, discriminator_optimizer, segmenter_optimizer: factories of the
            ``generator``, ``discriminator`` and ``segmenter`` optimizers (default: Adam 2e-4,
            betas (0.5, 0.999); the paper configs use the released ones).
        gradient_clip_norm: clip each network's gradient norm (released code: 50; ``None``: off).
        lr_schedule: learning-rate factor over the budget (default: constant).
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
        weighting: ImportanceWeighting | None = None,
        histogram_every_n_steps: int = 50,
        phases: RefinerPhases | None = None,
        history_size: int = 1000,
        refiner_init: WeightInit | None = None,
        discriminator_init: WeightInit | None = None,
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
        self.save_hyperparameters(ignore=COMPONENTS)
        self.G = (refiner_init or IdentityRefinerInit())(refiner or ReferenceRefiner())
        self.D = (discriminator_init or TorchDefaultInit())(discriminator or PairDiscriminator())
        self.R = segmentation_head or SegmentationHead()
        self.weighting = weighting
        self.phases = (phases or RefinerPhases()).build()
        self.history = ReplayBuffer(history_size)
        self.register_state("phases", self.phases)
        self.register_state("history", self.history)
        self.generator_optimizer = generator_optimizer
        self.discriminator_optimizer = discriminator_optimizer
        self.segmenter_optimizer = segmenter_optimizer
        self.lr_schedule = lr_schedule or ConstantRate()
        self.evaluator = WholeImageEvaluator(sliding_window, postprocess)
        self.predictor = predictor or SynthesizeImages()
        self._next_histogram = 0

    # -- training --------------------------------------------------------------------------
    def training_step(self, batch: TrainBatch, batch_idx: int) -> None:
        data, phase = RefinerBatch.from_batch(batch), self.phases.phase
        clip = self.hparams.gradient_clip_norm
        if phase == DISCRIMINATOR:
            with self.update("discriminator", clip) as step:
                step.loss, logs = self.discriminator_loss(self.refine_frozen(data), data)
        elif phase == SEGMENTER:
            with self.update("segmenter", clip) as step:
                step.loss, logs = self.segmenter_loss(self.refine_frozen(data), data)
        else:
            with self.update("generator", clip) as step:
                refined = self.G(data.initial, data.reference)
                step.loss, logs = self.generator_loss(refined, data, phase)
        self.phases.advance()
        logs = {f"train/{phase}/{k}": v.detach() for k, v in {"loss": step.loss, **logs}.items()}
        self.log_dict(
            {
                **logs,
                "train/phase_position": float(self.phases.position),
                "train/lr_factor": step.lr_factor,
            },
            batch_size=len(data.initial),
        )

    @torch.no_grad()
    def refine_frozen(self, data: RefinerBatch) -> torch.Tensor:
        """G's refined patches for D's and R's steps (no gradient into G)."""
        return self.G(data.initial, data.reference)

    def generator_loss(
        self, refined: torch.Tensor, data: RefinerBatch, phase: str
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """G's loss of the phase and its terms, over the synthetic items.

        ``generator_pretrain``: ``L_reg`` alone (Algorithm 1, line 2); ``generator``:
        ``αL_reg + βL_real``; ``generator_hard``: ``+ γL_hard`` with ``L_hard = -L_R`` of R on
        the refined patch and its initial mask.
        """
        h = self.hparams
        regularization = refiner_regularization(
            refined, data.initial, h.lambda_l1, h.lambda_l2, reduction="none"
        )
        terms = {"reg": masked_mean(regularization, data.synthetic)}
        if phase == GENERATOR_PRETRAIN:
            return terms["reg"], terms
        with eval_mode(self.D):
            realism = refiner_realism_loss(self.D(refined, data.reference))
        terms["real"] = masked_mean(realism, data.synthetic)
        loss = h.alpha * terms["reg"] + h.beta * terms["real"]
        if phase == GENERATOR_HARD and h.gamma > 0:
            area = refined.shape[-1] * refined.shape[-2]
            segmentation = self.R.per_sample_loss(to_unit(refined), data.label) * area
            terms["hard"] = -masked_mean(segmentation, data.synthetic)
            loss = loss + h.gamma * terms["hard"]
        return loss, terms

    def discriminator_loss(
        self, refined: torch.Tensor, data: RefinerBatch
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """``L_D`` on one batch of real pairs <S', S> and fake pairs <X, S>, half of the fakes
        from the replay buffer once it holds enough (S+U); the fresh synthetic items then join
        it. Also returns D's accuracy on the batch's real and fake pairs (threshold 0.5)."""
        fake, fake_reference, fake_weight = refined, data.reference, data.synthetic
        past = self.history.sample(len(refined) // 2, refined.device)
        if past is not None:
            keep = len(refined) - len(past["image"])
            fake = torch.cat([refined[:keep], past["image"]])
            if fake_reference is not None:
                fake_reference = torch.cat([fake_reference[:keep], past["reference"]])
            fake_weight = torch.cat([data.synthetic[:keep], torch.ones_like(data.synthetic[keep:])])
        chosen = data.synthetic.bool()
        self.history.push(
            image=refined[chosen],
            label=data.label[chosen],
            reference=None if data.reference is None else data.reference[chosen],
        )
        n_real = len(data.real)
        references = (
            None if fake_reference is None else torch.cat([data.real_reference, fake_reference])
        )
        logits = self.D(torch.cat([data.real, fake]), references)
        loss = refiner_discriminator_loss(logits[:n_real], logits[n_real:], fake_weight)
        with torch.no_grad():
            p = torch.sigmoid(logits.float()).flatten(1).mean(1)
            accuracy_real = (p[:n_real] > 0.5).float().mean()
            accuracy_fake = masked_mean((p[n_real:] <= 0.5).float(), fake_weight)
        return loss, {"accuracy_real": accuracy_real, "accuracy_fake": accuracy_fake}

    def segmenter_loss(
        self, refined: torch.Tensor, data: RefinerBatch
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """R's loss on the refined synthetic (and any real) items (detached: no gradient into G),
        each sample's loss times its weight: the weighting's from D (no gradient into D), or
        the batch's own without one."""
        refined = refined.detach()
        if self.weighting is None:
            return self.R.loss(data.for_segmenter(refined), data.label, data.weight), {}
        p = self.real_probability(refined, data.reference)
        weight = self.weighting.for_segmenter(p, data.synthetic, data.weight)
        loss = self.R.loss(data.for_segmenter(refined), data.label, weight)
        synthetic = weight[data.synthetic.bool()]
        if not len(synthetic):
            return loss, {}
        self._log_histogram(synthetic)
        return loss, {
            "weight_mean": synthetic.mean(),
            "weight_min": synthetic.min(),
            "weight_max": synthetic.max(),
        }

    @torch.no_grad()
    def real_probability(self, refined: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        """D's probability ``(B,)`` that each refined patch is real (eval mode, no gradient)."""
        with eval_mode(self.D):
            return real_probability(self.D(refined, reference))

    def _log_histogram(self, weights: torch.Tensor) -> None:
        if self._trainer is None or self.phases.position < self._next_histogram:
            return
        self._next_histogram = self.phases.position + self.hparams.histogram_every_n_steps
        for logger in self.loggers:
            experiment = getattr(logger, "experiment", None)
            if hasattr(type(experiment), "add_histogram"):  # TensorBoard's SummaryWriter
                experiment.add_histogram("train/importance_weight", weights, self.global_step)

    def configure_optimizers(self):
        return self.named_optimizers(
            generator=(self.generator_optimizer, self.G.parameters()),
            discriminator=(self.discriminator_optimizer, self.D.parameters()),
            segmenter=(self.segmenter_optimizer, self.R.parameters()),
        )

    # -- inference -------------------------------------------------------------------------
    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """H&E ``(B, 3, H, W)`` in [0, 1] -> R's class probabilities ``(B, 3, H, W)``."""
        return self.R.probabilities(image)

    def segmenter(self) -> Segment:
        return self.R.probabilities

    def refine(self, batch: Mapping) -> tuple[torch.Tensor, torch.Tensor]:
        """``(refined, reference)`` in [-1, 1] for a predict batch: the batch's ``image``
        refined in the style of its ``reference``. Predict batches of a synthetic dataset carry
        no reference; then the initial patch is its own reference (its background is real
        tissue of the image the reference would be drawn from, so its stain statistics are the
        nearest stand-in at hand)."""
        initial = to_signed(batch["image"])
        reference = to_signed(batch["reference"]) if "reference" in batch else initial
        return self.G(initial, reference), reference

    @torch.no_grad()
    def synthesize(self, batch: Mapping) -> SynthesisPrediction:
        """Initial patches ``image`` ``(B, 3, H, W)`` in [0, 1] (+ optional ``reference``) ->
        refined patches in [0, 1], the exact initial ``label`` maps, and their ``weight``
        ``(B,)``: the weighting's export weights, or 1 without a weighting."""
        refined, reference = self.refine(batch)
        weight = torch.ones(len(refined), device=refined.device)
        if self.weighting is not None:
            weight = self.weighting.for_export(self.real_probability(refined, reference))
        return {
            "image": to_unit(refined),
            "label": batch["label"],
            "image_id": list(batch["image_id"]),
            "weight": weight,
        }

    @torch.no_grad()
    def sample_images(self, batch: TrainBatch) -> dict[str, torch.Tensor]:
        """Rows of the sample grid: initial | refined | reference | refined with the mask
        outline (instance boundaries in green)."""
        refined, reference = self.refine(batch)
        refined = to_unit(refined)
        boundary = instance_boundaries(batch["label"].long(), 1)[:, None]
        green = torch.tensor([0.0, 1.0, 0.0], device=refined.device)[None, :, None, None]
        outline = torch.where(boundary, green.expand_as(refined), refined)
        return {
            "initial": batch["image"],
            "refined": refined,
            "reference": to_unit(reference),
            "mask outline": outline,
        }
