"""Mahmood et al. 2019, §III.D: CycleGAN between random nucleus masks and real H&E tissue.

Domain M: instance masks (from ``histo-gan synthesize``), drawn as flat H&E-coloured
background/interior/boundary pictures in [-1, 1] (:class:`MaskEncoding` with a palette; the
paper does not say how masks enter the generator; with one-hot channels the CPU CycleGAN
converged to the inverted map). Domain N: real tissue patches, unpaired. ``G: M -> N`` is the
synthesiser; ``S: N -> M`` is its reverse, trained only to make ``G`` better (and evaluated
with the shared metrics, so runs report how well the reverse mapping segments real nuclei).
Both discriminators use spectral normalisation.

Batches come from :class:`~histo_gan.data.HistoDataModule` with ``synthetic_ratio: 1`` (masks
in ``label``) and ``unpaired_real: true`` (real tissue in ``real``). ``predict`` turns the
masks of a dataset into (mask, H&E) pairs (the module is a :class:`~histo_gan.types.Synthesizer`);
the :class:`~histo_gan.callbacks.SyntheticExport` callback writes them as a synthetic dataset.
Set ``predictor: histo_gan.training.SegmentImages`` to segment real images with S instead.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import lightning as L
import torch
from lightning.pytorch.cli import OptimizerCallable
from torch import nn

from histo_gan.inference.tiling import SlidingWindow
from histo_gan.losses import ReplayBuffer, VanillaGANLoss, cycle_loss, identity_loss
from histo_gan.metrics.postprocess import InstancePostprocessor
from histo_gan.networks import NormalInit, PatchDiscriminator, ResnetGenerator, WeightInit
from histo_gan.training.evaluation import (
    Predictor,
    Segment,
    SegmenterEvaluation,
    SynthesizeImages,
    WholeImageEvaluator,
)
from histo_gan.training.gan_steps import NamedUpdates
from histo_gan.training.mask_encoding import HE_PALETTE, MaskEncoding
from histo_gan.training.schedules import ConstantRate, LinearDecay
from histo_gan.training.state import CheckpointedState
from histo_gan.types import SynthesisPrediction, TrainBatch, to_signed, to_unit

__all__ = ["CycleGANModule"]


class CycleGANModule(SegmenterEvaluation, NamedUpdates, CheckpointedState, L.LightningModule):
    """Unpaired mask <-> H&E translation with cycle consistency and spectral-norm PatchGANs.

    Args:
        mask_to_image: generator G, ``(B, 3, H, W)`` encoded masks -> H&E in [-1, 1]
            (default: ResNet, 9 blocks).
        image_to_mask: generator S, H&E in [-1, 1] -> encoded masks (default: ResNet, 9 blocks).
        image_discriminator: D_N on H&E (default: 70x70 PatchGAN with spectral norm).
        mask_discriminator: D_M on encoded masks (default: as D_N).
        adversarial_loss: a GAN loss with ``generator_loss``/``discriminator_loss``.
        lambda_adversarial: weight of the generators' adversarial terms (0 trains the
            generators on the cycle and identity terms alone).
        lambda_cycle_image: weight of ``|G(S(n)) - n|_1`` (lambda_n).
        lambda_cycle_mask: weight of ``|S(G(m)) - m|_1`` (lambda_m).
        lambda_identity: identity weight relative to the cycle weights (CycleGAN convention:
            ``lambda_identity * lambda_cycle_image * |G(n) - n|_1`` and likewise for S).
        pool_size: capacity of each discriminator's replay buffer of fakes (0 = none).
        discriminator_loss_scale: the discriminator objective is multiplied by this (0.5 as in
            the paper, "to give it a lower learning rate").
        weight_init: applied to the four networks (default :class:`NormalInit`, N(0, 0.02)).
        generator_optimizer: optimizer factory of G and S together, the ``generators``
            optimizer (default: Adam, lr 2e-4, betas (0.5, 0.999), as in the paper).
        discriminator_optimizer: optimizer factory of both discriminators, the
            ``discriminators`` optimizer (same default).
        lr_schedule: learning-rate schedule over the training budget (default: constant, then
            linear decay over the second half, as CycleGAN).
        boundary_width: boundary thickness of the mask encoding.
        mask_palette: masks drawn as flat colours (background, interior, boundary; RGB in
            [0, 1]); default :data:`~histo_gan.training.mask_encoding.HE_PALETTE`, dark nuclei
            on pink. ``None``: one-hot channels, on which the CPU CycleGAN converged to the
            inverted map (bright nuclei; S marking stroma), which both cycles accept equally.
        sliding_window, postprocess: evaluation of S on whole real images.
        predictor: what ``predict`` does (default: synthesize H&E from label maps with G).
    """

    def __init__(
        self,
        mask_to_image: nn.Module | None = None,
        image_to_mask: nn.Module | None = None,
        image_discriminator: nn.Module | None = None,
        mask_discriminator: nn.Module | None = None,
        adversarial_loss: nn.Module | None = None,
        lambda_adversarial: float = 1.0,
        lambda_cycle_image: float = 10.0,
        lambda_cycle_mask: float = 10.0,
        lambda_identity: float = 0.5,
        pool_size: int = 50,
        discriminator_loss_scale: float = 0.5,
        weight_init: WeightInit | None = None,
        generator_optimizer: OptimizerCallable | None = None,
        discriminator_optimizer: OptimizerCallable | None = None,
        lr_schedule: ConstantRate | None = None,
        boundary_width: int = 1,
        mask_palette: Sequence[Sequence[float]] | None = HE_PALETTE,
        sliding_window: SlidingWindow | None = None,
        postprocess: InstancePostprocessor | None = None,
        predictor: Predictor | None = None,
    ) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.save_hyperparameters(
            ignore=[
                "mask_to_image",
                "image_to_mask",
                "image_discriminator",
                "mask_discriminator",
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
        self.encoding = MaskEncoding(boundary_width, mask_palette)
        c = self.encoding.channels
        if lambda_identity > 0 and c != 3:
            raise ValueError(
                "the identity loss needs masks and images with the same channels: use "
                "boundary_width (3-channel masks) or lambda_identity: 0"
            )
        self.G = mask_to_image or ResnetGenerator(c, 3, n_blocks=9)
        self.S = image_to_mask or ResnetGenerator(3, c, n_blocks=9)
        self.D_image = image_discriminator or PatchDiscriminator(3, spectral_norm=True)
        self.D_mask = mask_discriminator or PatchDiscriminator(c, spectral_norm=True)
        weight_init = weight_init or NormalInit()
        for network in (self.G, self.S, self.D_image, self.D_mask):
            weight_init(network)
        self.adversarial = adversarial_loss or VanillaGANLoss()
        self.fake_image_pool = ReplayBuffer(pool_size)
        self.fake_mask_pool = ReplayBuffer(pool_size)
        self.register_state("fake_image_pool", self.fake_image_pool)
        self.register_state("fake_mask_pool", self.fake_mask_pool)
        self.generator_optimizer, self.discriminator_optimizer = (
            generator_optimizer,
            discriminator_optimizer,
        )
        self.lr_schedule = lr_schedule or LinearDecay(0.5)
        self.evaluator = WholeImageEvaluator(sliding_window, postprocess)
        self.predictor = predictor or SynthesizeImages()

    # -- inference -------------------------------------------------------------------------
    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """Real H&E ``(B, 3, H, W)`` in [0, 1] -> mask class probabilities (reverse mapping S)."""
        return self.encoding.to_probabilities(self.S(to_signed(image)))

    def segmenter(self) -> Segment:
        return self.forward

    def synthesize(self, batch: Mapping) -> SynthesisPrediction:
        """Label maps ``(B, H, W)`` -> synthetic H&E ``(B, 3, H, W)`` in [0, 1] with G."""
        image = to_unit(self.G(self.encoding.encode(batch["label"])))
        return {"image": image, "label": batch["label"], "image_id": list(batch["image_id"])}

    # -- training --------------------------------------------------------------------------
    def training_step(self, batch: TrainBatch, batch_idx: int) -> None:
        if "real" not in batch:
            raise ValueError("CycleGANModule needs unpaired real patches: set data.unpaired_real")
        h = self.hparams
        masks = self.encoding.encode(batch["label"])
        real = to_signed(batch["real"])

        with self.update("generators") as generators:
            fake_image, fake_mask = self.G(masks), self.S(real)
            adversarial = self.adversarial.generator_loss(
                self.D_image(fake_image)
            ) + self.adversarial.generator_loss(self.D_mask(fake_mask))
            cycle = cycle_loss(self.S(fake_image), masks, h.lambda_cycle_mask) + cycle_loss(
                self.G(fake_mask), real, h.lambda_cycle_image
            )
            identity = torch.zeros((), device=self.device)
            if h.lambda_identity > 0:
                identity = identity_loss(
                    self.G(real), real, h.lambda_cycle_image, h.lambda_identity
                ) + identity_loss(self.S(masks), masks, h.lambda_cycle_mask, h.lambda_identity)
            generators.loss = h.lambda_adversarial * adversarial + cycle + identity

        with self.update("discriminators") as discriminators:
            pooled_image = self.fake_image_pool.exchange(image=fake_image)["image"]
            pooled_mask = self.fake_mask_pool.exchange(image=fake_mask)["image"]
            discriminators.loss = h.discriminator_loss_scale * (
                self.adversarial.discriminator_loss(self.D_image(real), self.D_image(pooled_image))
                + self.adversarial.discriminator_loss(self.D_mask(masks), self.D_mask(pooled_mask))
            )

        self.log_dict(
            {
                "train/loss_generator": generators.loss.detach(),
                "train/loss_adversarial": adversarial.detach(),
                "train/loss_cycle": cycle.detach(),
                "train/loss_identity": identity.detach(),
                "train/loss_discriminator": discriminators.loss.detach(),
                "train/lr_factor": generators.lr_factor,
            },
            prog_bar=False,
            batch_size=len(masks),
        )

    def configure_optimizers(self):
        return self.named_optimizers(
            generators=(self.generator_optimizer, [*self.G.parameters(), *self.S.parameters()]),
            discriminators=(
                self.discriminator_optimizer,
                [*self.D_image.parameters(), *self.D_mask.parameters()],
            ),
        )

    @torch.no_grad()
    def sample_images(self, batch: TrainBatch) -> dict[str, torch.Tensor]:
        """Rows of the sample grid: mask, G(mask), real tissue, S(real tissue)."""
        masks = self.encoding.encode(batch["label"])
        rows = {"mask": self.encoding.to_rgb(masks), "G(mask)": to_unit(self.G(masks))}
        if "real" in batch:
            rows["real"] = batch["real"]
            rows["S(real)"] = self.encoding.to_rgb(self.S(to_signed(batch["real"])))
        return rows
