"""pix2pixHD and DAFF-GAN (Cheng et al., §III): one paired cGAN module for both stages.

The generator is injected: a pix2pixHD :class:`~histo_gan.networks.LocalEnhancer` around a
:class:`~histo_gan.networks.GlobalGenerator` (or either DAFF variant, or a global generator
alone); what it translates is the injected :mod:`pairing <histo_gan.modules.pairings>`
(stage 1: centroid points -> mask, stage 2: mask -> H&E). Losses as pix2pixHD: LSGAN over the
scales of a conditional multiscale discriminator ``D(image, condition)``, feature matching
(weight 10), optional VGG perceptual loss, plus an optional pix2pix L1 term (0 by default:
neither paper uses one). D's loss is halved, as in pix2pixHD's code.

Coarse-to-fine (:class:`~histo_gan.modules.CoarseToFine`, in checkpoints): in the ``global``
phase the global generator is trained on 2x-downsampled (input, target) pairs against the same
discriminator (pix2pixHD uses a separate run; D is fully convolutional, so one D serves both
resolutions here); then the enhancer, first with the global part frozen, then jointly.

No segmenter: validation and test log ``val/l1`` / ``test/l1``, the mean absolute error in
[0, 1] units between the full generator's output and the target on whole held-out images
(reflection-padded to the generator's size multiple, cropped back). ``predict`` synthesizes
(:class:`SynthesizeImages`): the pairing says what a prediction is (stage 1: instances of the
generated mask; stage 2: H&E with the exact input label map).
"""

from __future__ import annotations

from collections.abc import Mapping

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.cli import OptimizerCallable
from torch import nn

from histo_gan.losses import FeatureMatchingLoss, LSGANLoss, VGGPerceptualLoss
from histo_gan.modules.coarse_to_fine import ENHANCER, GLOBAL, JOINT, CoarseToFine, training_batches
from histo_gan.modules.evaluation import Predictor, SynthesizeImages
from histo_gan.modules.gan_steps import make_optimizer, optimize
from histo_gan.modules.pairings import Pairing
from histo_gan.modules.schedules import ConstantRate, LinearDecay
from histo_gan.modules.state import CheckpointedState
from histo_gan.networks import MultiscaleDiscriminator, downsample2x, init_weights
from histo_gan.types import SynthesisPrediction

__all__ = ["Pix2PixHDModule"]


class Pix2PixHDModule(CheckpointedState, L.LightningModule):
    """Paired translation ``pairing.inputs(batch) -> pairing.targets(batch)`` with pix2pixHD's losses.

    Args:
        generator: ``(B, 3, H, W)`` in [-1, 1] -> same; has ``multiple`` (H and W of its input
            must be multiples of it) and, for coarse-to-fine training, ``global_generator``,
            ``downsample`` and ``set_global_trainable`` (a :class:`LocalEnhancer`).
        pairing: what is translated into what (:class:`CentroidsToMask`, :class:`MaskToImage`).
        discriminator: ``D(image, condition)`` returning per-scale features with logits last
            (default: 2-scale, 3-layer :class:`MultiscaleDiscriminator`, ndf 64, conditional).
        adversarial_loss: default :class:`LSGANLoss` (mean over scales).
        feature_matching: default :class:`FeatureMatchingLoss` with weight 10.
        perceptual: e.g. :class:`VGGPerceptualLoss` (local weights only); None: no VGG term.
        lambda_l1: weight of ``|G(x) - y|_1`` (0: off, as in the papers).
        schedule: coarse-to-fine phases; None trains ``generator`` whole from the start.
        generator_optimizer, discriminator_optimizer: default Adam(2e-4, (0.5, 0.999)).
        lr_schedule: default: constant, then linear decay over the second half (pix2pixHD).
        predictor: what ``predict`` does (default :class:`SynthesizeImages`).
    """

    def __init__(
        self,
        generator: nn.Module,
        pairing: Pairing,
        discriminator: nn.Module | None = None,
        adversarial_loss: nn.Module | None = None,
        feature_matching: FeatureMatchingLoss | None = None,
        perceptual: VGGPerceptualLoss | None = None,
        lambda_l1: float = 0.0,
        schedule: CoarseToFine | None = None,
        generator_optimizer: OptimizerCallable | None = None,
        discriminator_optimizer: OptimizerCallable | None = None,
        lr_schedule: ConstantRate | None = None,
        predictor: Predictor | None = None,
    ) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.save_hyperparameters("lambda_l1")
        if schedule is not None and not hasattr(generator, "global_generator"):
            raise ValueError("a coarse-to-fine schedule needs a generator with a global_generator")
        self.G = generator
        self.D = discriminator or MultiscaleDiscriminator(3, condition_channels=3)
        for network in (self.G, self.D):
            init_weights(network)
        self.pairing = pairing
        self.adversarial = adversarial_loss or LSGANLoss()
        self.feature_matching = feature_matching or FeatureMatchingLoss(10.0)
        self.perceptual = perceptual
        self.schedule = schedule
        if schedule is not None:
            self.register_state("coarse_to_fine", schedule)
        self.optimizer_factories = (generator_optimizer, discriminator_optimizer)
        self.lr_schedule = lr_schedule or LinearDecay(0.5)
        self.predictor = predictor or SynthesizeImages()

    # -- inference -------------------------------------------------------------------------
    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """Full generator on any size: reflection-pad to ``G.multiple``, generate, crop back."""
        h, w = inputs.shape[-2:]
        m = self.G.multiple
        padded = F.pad(inputs, (0, -w % m, 0, -h % m), mode="reflect")
        return self.G(padded)[..., :h, :w]

    def synthesize(self, batch: Mapping) -> SynthesisPrediction:
        return self.pairing.prediction(self(self.pairing.inputs(batch)), batch)

    def predict_step(self, batch: Mapping, batch_idx: int):
        return self.predictor(self, batch)

    def validation_step(self, batch: Mapping, batch_idx: int) -> None:
        self._log_l1("val", batch)

    def test_step(self, batch: Mapping, batch_idx: int) -> None:
        self._log_l1("test", batch)

    def _log_l1(self, stage: str, batch: Mapping) -> None:
        if "label" not in batch or bool(batch.get("is_padding", torch.zeros(1)).any()):
            return
        error = (self(self.pairing.inputs(batch)) - self.pairing.targets(batch)).abs().mean() / 2
        self.log(f"{stage}/l1", error, sync_dist=True, batch_size=1)

    # -- training --------------------------------------------------------------------------
    @property
    def phase(self) -> str:
        return JOINT if self.schedule is None else self.schedule.phase

    def on_train_start(self) -> None:
        if self.schedule is not None:
            self.schedule.resolve(training_batches(self.trainer, optimizer_steps_per_batch=2))

    def _generate(self, condition: torch.Tensor, target: torch.Tensor, phase: str):
        """``(condition, target, fake)`` at the phase's resolution, with the phase's networks."""
        if phase == GLOBAL:
            condition, target = downsample2x(condition), downsample2x(target)
            return condition, target, self.G.global_generator(condition)
        if self.schedule is not None:
            self.G.set_global_trainable(phase != ENHANCER)
        return condition, target, self.G(condition)

    def training_step(self, batch: Mapping, batch_idx: int) -> None:
        optimizers = self.optimizers()
        opt_g, opt_d = optimizers
        lr_factor = self.lr_schedule.apply(optimizers, self.trainer)
        phase = self.phase
        condition, target, fake = self._generate(
            self.pairing.inputs(batch), self.pairing.targets(batch), phase
        )

        self.D.requires_grad_(False)  # from the forward on: no graph into D in the G step
        fake_out, real_out = self.D(fake, condition), self.D(target, condition)
        adversarial = self.adversarial.generator_loss(fake_out)
        matching = self.feature_matching(fake_out, real_out)
        perceptual = self.perceptual(fake, target) if self.perceptual is not None else 0.0
        l1 = self.hparams.lambda_l1 * F.l1_loss(fake, target)
        generator_loss = adversarial + matching + perceptual + l1
        optimize(self, opt_g, generator_loss)
        self.D.requires_grad_(True)  # before the D step's toggle records it

        discriminator_loss = 0.5 * self.adversarial.discriminator_loss(
            self.D(target, condition), self.D(fake.detach(), condition)
        )
        optimize(self, opt_d, discriminator_loss)
        if self.schedule is not None:
            self.schedule.advance()

        self.log_dict(
            {
                "train/loss_generator": generator_loss.detach(),
                "train/loss_adversarial": adversarial.detach(),
                "train/loss_feature_matching": matching.detach(),
                "train/loss_perceptual": torch.as_tensor(perceptual).detach(),
                "train/loss_l1": torch.as_tensor(l1).detach(),
                "train/loss_discriminator": discriminator_loss.detach(),
                "train/phase": float((GLOBAL, ENHANCER, JOINT).index(phase)),
                "train/lr_factor": lr_factor,
            },
            batch_size=len(target),
        )

    def configure_optimizers(self):
        generator_factory, discriminator_factory = self.optimizer_factories
        return [
            make_optimizer(generator_factory, self.G.parameters()),
            make_optimizer(discriminator_factory, self.D.parameters()),
        ]

    @torch.no_grad()
    def sample_images(self, batch: Mapping) -> dict[str, torch.Tensor]:
        """Rows of the sample grid: input, G(input) (full generator), target."""
        inputs = self.pairing.inputs(batch)
        return {
            "input": self.pairing.input_picture(inputs),
            "G(input)": self.pairing.output_picture(self(inputs)),
            "target": self.pairing.output_picture(self.pairing.targets(batch)),
        }
