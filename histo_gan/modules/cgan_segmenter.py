"""Mahmood et al. 2019, §III.E-F: a conditional GAN that segments nuclei.

The generator S (pix2pix U-Net) maps H&E to a nucleus mask (one-hot background / interior /
boundary, or one foreground channel) in [-1, 1]; the spectral-norm PatchGAN discriminator sees
(mask, H&E) pairs. The generator minimises the adversarial loss plus ``lambda_l1`` times the
L1 distance to the true mask; a pool of past (mask, H&E) pairs feeds the discriminator. A
WGAN-GP gradient penalty can be added. Training data may be real, synthetic or both (the
DataModule's ``synthetic_ratio``); per-sample importance weights scale the L1 term.

L1 makes an unsure generator predict the per-pixel median, which is background wherever
nuclei cover less than half of the pixels (about 1 in 5 on MoNuSeg): early in training, and
for good at small budgets, the mask is empty and AJI is 0 while the discriminator wins.
``foreground_weight`` counts nucleus pixels that many times in the L1 mean (1 = the paper's
plain L1); about background/foreground, e.g. 4, balances the two.
"""

from __future__ import annotations

import lightning as L
import torch
from lightning.pytorch.cli import OptimizerCallable
from torch import nn

from histo_gan.inference.tiling import SlidingWindow
from histo_gan.losses import (
    ReplayBuffer,
    VanillaGANLoss,
    foreground_weighted_l1,
    gradient_penalty,
)
from histo_gan.metrics.postprocess import InstancePostprocessor
from histo_gan.networks import NormalInit, PatchDiscriminator, UnetGenerator, WeightInit
from histo_gan.training.evaluation import (
    Predictor,
    Segment,
    SegmenterEvaluation,
    SegmentImages,
    WholeImageEvaluator,
)
from histo_gan.training.gan_steps import NamedUpdates
from histo_gan.training.mask_encoding import MaskEncoding
from histo_gan.training.schedules import ConstantRate, LinearDecay
from histo_gan.training.state import CheckpointedState
from histo_gan.types import TrainBatch, to_signed

__all__ = ["SpectralNormCGANSegmenterModule"]


class SpectralNormCGANSegmenterModule(
    SegmenterEvaluation, NamedUpdates, CheckpointedState, L.LightningModule
):
    """pix2pix-style segmentation GAN with a spectral-norm conditional PatchGAN.

    Args:
        generator: H&E ``(B, 3, H, W)`` in [-1, 1] -> encoded mask in [-1, 1] (default:
            pix2pix U-Net for 256-px patches, BatchNorm, tanh output).
        discriminator: PatchGAN on the encoded mask conditioned on the H&E image (default:
            70x70, spectral norm, ``condition_channels=3``); called as ``D(mask, image)``.
        adversarial_loss: a GAN loss with ``generator_loss``/``discriminator_loss``.
        lambda_l1: weight of the L1 term (70 in the released code).
        foreground_weight: weight of nucleus pixels in the L1 mean, relative to background (1 =
            plain L1, as the paper).
        pool_size: capacity of the replay buffer of fake (mask, image) pairs (64).
        gradient_penalty_weight: WGAN-GP weight on the discriminator (0 = off).
        discriminator_loss_scale: factor of the discriminator objective (0.5 as pix2pix).
        weight_init: applied to both networks (default :class:`NormalInit`, N(0, 0.02)).
        generator_optimizer, discriminator_optimizer: factories of the ``generator`` and
            ``discriminator`` optimizers (default: Adam, lr 2e-4, betas (0.5, 0.999), as pix2pix).
        lr_schedule: learning-rate schedule over the training budget (default: constant, then
            linear decay over the second half).
        boundary_width: boundary thickness of the mask encoding; ``None`` predicts a
            single foreground channel.
        sliding_window, postprocess: whole-image evaluation.
        predictor: what ``predict`` does (default: segment whole images).
    """

    def __init__(
        self,
        generator: nn.Module | None = None,
        discriminator: nn.Module | None = None,
        adversarial_loss: nn.Module | None = None,
        lambda_l1: float = 70.0,
        foreground_weight: float = 1.0,
        pool_size: int = 64,
        gradient_penalty_weight: float = 0.0,
        discriminator_loss_scale: float = 0.5,
        weight_init: WeightInit | None = None,
        generator_optimizer: OptimizerCallable | None = None,
        discriminator_optimizer: OptimizerCallable | None = None,
        lr_schedule: ConstantRate | None = None,
        boundary_width: int | None = 1,
        sliding_window: SlidingWindow | None = None,
        postprocess: InstancePostprocessor | None = None,
        predictor: Predictor | None = None,
    ) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.save_hyperparameters(
            ignore=[
                "generator",
                "discriminator",
                "adversarial_loss",
                "sliding_window",
                "postprocess",
                "predictor",
                "weight_init",
                "generator_optimizer",
                "discriminator_optimizer",
                "lr_schedule",
            ]
        )
        self.encoding = MaskEncoding(boundary_width)
        c = self.encoding.channels
        self.generator = generator or UnetGenerator(3, c, patch_size=256)
        self.discriminator = discriminator or PatchDiscriminator(
            c, spectral_norm=True, condition_channels=3
        )
        weight_init = weight_init or NormalInit()
        weight_init(self.generator)
        weight_init(self.discriminator)
        self.adversarial = adversarial_loss or VanillaGANLoss()
        self.pair_pool = ReplayBuffer(pool_size)
        self.register_state("pair_pool", self.pair_pool)
        self.generator_optimizer, self.discriminator_optimizer = (
            generator_optimizer,
            discriminator_optimizer,
        )
        self.lr_schedule = lr_schedule or LinearDecay(0.5)
        self.evaluator = WholeImageEvaluator(sliding_window, postprocess)
        self.predictor = predictor or SegmentImages()

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """H&E ``(B, 3, H, W)`` in [0, 1] -> mask class probabilities ``(B, C, H, W)``."""
        return self.encoding.to_probabilities(self.generator(to_signed(image)))

    def segmenter(self) -> Segment:
        return self.forward

    def training_step(self, batch: TrainBatch, batch_idx: int) -> None:
        h = self.hparams
        image = to_signed(batch["image"])
        mask = self.encoding.encode(batch["label"])
        weight = batch.get("weight")

        with self.update("generator") as g:
            fake = self.generator(image)
            adversarial = self.adversarial.generator_loss(self.discriminator(fake, image))
            l1 = foreground_weighted_l1(fake, mask, batch["label"] > 0, h.foreground_weight, weight)
            g.loss = adversarial + h.lambda_l1 * l1

        with self.update("discriminator") as d:
            pooled = self.pair_pool.exchange(image=torch.cat([fake, image], dim=1))["image"]
            pooled_mask, pooled_image = pooled[:, : mask.shape[1]], pooled[:, mask.shape[1] :]
            discriminator_loss = h.discriminator_loss_scale * self.adversarial.discriminator_loss(
                self.discriminator(mask, image), self.discriminator(pooled_mask, pooled_image)
            )
            penalty = torch.zeros((), device=self.device)
            if h.gradient_penalty_weight > 0:
                penalty = gradient_penalty(
                    self.discriminator,
                    mask,
                    fake.detach(),
                    condition=image,
                    weight=h.gradient_penalty_weight,
                )
            d.loss = discriminator_loss + penalty

        self.log_dict(
            {
                "train/loss_generator": g.loss.detach(),
                "train/loss_adversarial": adversarial.detach(),
                "train/loss_l1": l1.detach(),
                "train/loss_discriminator": discriminator_loss.detach(),
                "train/gradient_penalty": penalty.detach(),
                "train/lr_factor": g.lr_factor,
            },
            batch_size=len(image),
        )

    def configure_optimizers(self):
        return self.named_optimizers(
            generator=(self.generator_optimizer, self.generator.parameters()),
            discriminator=(self.discriminator_optimizer, self.discriminator.parameters()),
        )

    @torch.no_grad()
    def sample_images(self, batch: TrainBatch) -> dict[str, torch.Tensor]:
        """Rows of the sample grid: H&E, true mask, predicted mask."""
        predicted = self.generator(to_signed(batch["image"]))
        return {
            "image": batch["image"],
            "mask": self.encoding.to_rgb(self.encoding.encode(batch["label"])),
            "prediction": self.encoding.to_rgb(predicted),
        }
