"""pix2pixHD and DAFF-GAN (Cheng et al., §III): one paired cGAN module for both stages.

The generator is injected: a pix2pixHD :class:`~histo_gan.networks.LocalEnhancer` around a
:class:`~histo_gan.networks.GlobalGenerator` (or either DAFF variant, or a global generator
alone); what it translates is the injected :mod:`pairing <histo_gan.training.pairings>`
(stage 1: centroid points -> mask, stage 2: mask -> H&E). Losses as pix2pixHD: LSGAN over the
scales of a conditional multiscale discriminator ``D(image, condition)``, feature matching
(weight 10), optional VGG perceptual loss, plus an optional pix2pix L1 term (0 by default:
neither paper uses one). D's loss is halved, as in pix2pixHD's code.

Coarse-to-fine (:class:`~histo_gan.training.CoarseToFine`, in checkpoints): in the ``global``
phase the global generator is trained on 2x-downsampled (input, target) pairs against the same
discriminator (pix2pixHD uses a separate run; D is fully convolutional, so one D serves both
resolutions here); then the enhancer, first with the global part frozen, then jointly.

A synthesizer (:class:`~histo_gan.training.evaluation.SynthesizerEvaluation`): validation and
test log ``val/l1`` / ``test/l1``, the mean absolute error in [0, 1] units between what
``synthesize`` makes of a whole held-out image (reflection-padded to the generator's size
multiple, cropped back) and the pairing's target picture of it; ``predict`` exports
(:class:`SynthesizeImages`) what the pairing says a prediction is (stage 1: instances of the
generated mask and their picture; stage 2: H&E with the exact input label map).
"""

from __future__ import annotations

from collections.abc import Mapping

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.cli import OptimizerCallable
from torch import nn

from histo_gan.inference import padded_call
from histo_gan.losses import FeatureMatchingLoss, LSGANLoss, VGGPerceptualLoss
from histo_gan.networks import MultiscaleDiscriminator, NormalInit, WeightInit, downsample2x
from histo_gan.training.coarse_to_fine import (
    ENHANCER,
    GLOBAL,
    JOINT,
    CoarseToFine,
    training_batches,
)
from histo_gan.training.evaluation import Predictor, SynthesizeImages, SynthesizerEvaluation
from histo_gan.training.gan_steps import NamedUpdates
from histo_gan.training.pairings import Pairing
from histo_gan.training.schedules import ConstantRate, LinearDecay
from histo_gan.training.state import CheckpointedState
from histo_gan.types import SynthesisPrediction

__all__ = ["Pix2PixHDModule"]


class Pix2PixHDModule(SynthesizerEvaluation, NamedUpdates, CheckpointedState, L.LightningModule):
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
        coarse_to_fine: the coarse-to-fine stages; None trains ``generator`` whole from the
            start.
        weight_init: applied to G and D (default :class:`NormalInit`, N(0, 0.02)).
        generator_optimizer, discriminator_optimizer: factories of the ``generator`` and
            ``discriminator`` optimizers (default Adam(2e-4, (0.5, 0.999))).
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
        coarse_to_fine: CoarseToFine | None = None,
        weight_init: WeightInit | None = None,
        generator_optimizer: OptimizerCallable | None = None,
        discriminator_optimizer: OptimizerCallable | None = None,
        lr_schedule: ConstantRate | None = None,
        predictor: Predictor | None = None,
    ) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.save_hyperparameters("lambda_l1")
        if coarse_to_fine is not None and not hasattr(generator, "global_generator"):
            raise ValueError("coarse-to-fine stages need a generator with a global_generator")
        if coarse_to_fine is not None and generator.global_generator.head is None:
            raise ValueError(
                "coarse-to-fine stages train the global generator alone through its output "
                "head, which the local enhancer removed: build it with global_head: true"
            )
        self.G = generator
        self.D = discriminator or MultiscaleDiscriminator(3, condition_channels=3)
        weight_init = weight_init or NormalInit()
        for network in (self.G, self.D):
            weight_init(network)
        self.pairing = pairing
        self.adversarial = adversarial_loss or LSGANLoss()
        self.feature_matching = feature_matching or FeatureMatchingLoss(10.0)
        self.perceptual = perceptual
        self.coarse_to_fine = coarse_to_fine
        if coarse_to_fine is not None:
            self.register_state("coarse_to_fine", coarse_to_fine)
        self.generator_optimizer, self.discriminator_optimizer = (
            generator_optimizer,
            discriminator_optimizer,
        )
        self.lr_schedule = lr_schedule or LinearDecay(0.5)
        self.predictor = predictor or SynthesizeImages()

    # -- inference -------------------------------------------------------------------------
    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """Full generator on any size: reflection-pad to ``G.multiple``, generate, crop back."""
        return padded_call(self.G, inputs, self.G.multiple)

    def synthesize(self, batch: Mapping) -> SynthesisPrediction:
        """The pairing's prediction from the batch's label maps (see the module docstring)."""
        return self.pairing.prediction(self(self.pairing.inputs(batch)), batch)

    def heldout_target(self, batch: Mapping) -> torch.Tensor:
        """The pairing's target picture, ``(1, 3, H, W)`` in [0, 1] (the mask or the H&E)."""
        return self.pairing.output_picture(self.pairing.targets(batch))

    # -- training --------------------------------------------------------------------------
    @property
    def phase(self) -> str:
        return JOINT if self.coarse_to_fine is None else self.coarse_to_fine.phase

    def on_train_start(self) -> None:
        if self.coarse_to_fine is not None:
            batches = training_batches(self.trainer, optimizer_steps_per_batch=2)
            self.coarse_to_fine.resolve(batches)

    def _generate(self, condition: torch.Tensor, target: torch.Tensor, phase: str):
        """``(condition, target, fake)`` at the phase's resolution, with the phase's networks."""
        if phase == GLOBAL:
            condition, target = downsample2x(condition), downsample2x(target)
            return condition, target, self.G.global_generator(condition)
        if self.coarse_to_fine is not None:
            self.G.set_global_trainable(phase != ENHANCER)
        return condition, target, self.G(condition)

    def training_step(self, batch: Mapping, batch_idx: int) -> None:
        phase = self.phase
        with self.update("generator") as g:
            condition, target, fake = self._generate(
                self.pairing.inputs(batch), self.pairing.targets(batch), phase
            )
            fake_out, real_out = self.D(fake, condition), self.D(target, condition)
            adversarial = self.adversarial.generator_loss(fake_out)
            matching = self.feature_matching(fake_out, real_out)
            perceptual = self.perceptual(fake, target) if self.perceptual is not None else 0.0
            l1 = self.hparams.lambda_l1 * F.l1_loss(fake, target)
            g.loss = adversarial + matching + perceptual + l1

        with self.update("discriminator") as d:
            d.loss = 0.5 * self.adversarial.discriminator_loss(
                self.D(target, condition), self.D(fake.detach(), condition)
            )
        if self.coarse_to_fine is not None:
            self.coarse_to_fine.advance()

        self.log_dict(
            {
                "train/loss_generator": g.loss.detach(),
                "train/loss_adversarial": adversarial.detach(),
                "train/loss_feature_matching": matching.detach(),
                "train/loss_perceptual": torch.as_tensor(perceptual).detach(),
                "train/loss_l1": torch.as_tensor(l1).detach(),
                "train/loss_discriminator": d.loss.detach(),
                "train/phase": float((GLOBAL, ENHANCER, JOINT).index(phase)),
                "train/lr_factor": g.lr_factor,
            },
            batch_size=len(target),
        )

    def configure_optimizers(self):
        return self.named_optimizers(
            generator=(self.generator_optimizer, self.G.parameters()),
            discriminator=(self.discriminator_optimizer, self.D.parameters()),
        )

    @torch.no_grad()
    def sample_images(self, batch: Mapping) -> dict[str, torch.Tensor]:
        """Rows of the sample grid: input, G(input) (full generator), target."""
        inputs = self.pairing.inputs(batch)
        return {
            "input": self.pairing.input_picture(inputs),
            "G(input)": self.pairing.output_picture(self(inputs)),
            "target": self.pairing.output_picture(self.pairing.targets(batch)),
        }
