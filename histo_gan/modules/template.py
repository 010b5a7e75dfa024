"""The method contract, and the shortest method that keeps it: read this file to add a method.

A method is one LightningModule in one file of :mod:`histo_gan.modules`, exported from
``histo_gan/modules/__init__.py`` and run by ``histo-gan fit|validate|test|predict`` with a
config that names it (``model.class_path``). Every method provides:

1. **Injected components.** Networks, losses, optimizer factories, the learning-rate schedule,
   weight initialisation and the predictor are constructor arguments (``class_path`` /
   ``init_args`` in YAML), with defaults at paper size; no string switches. Scalars (loss
   weights) go to ``save_hyperparameters``; components are left out of it (``ignore``).
2. **Its training step**, top to bottom in its own file. A GAN uses manual optimisation and
   :class:`~histo_gan.training.gan_steps.NamedUpdates`: optimizers are built by name in
   ``configure_optimizers`` (``self.named_optimizers(generator=..., discriminator=...)``) and
   every update is one ``with self.update(name) as step:`` block that sets ``step.loss``.
   Logged names: ``train/loss_<term>`` (or ``train/<phase>/loss``) for losses.
3. **sample_images** ``(batch: TrainBatch) -> dict[str, Tensor]``: the rows of the
   :class:`~histo_gan.callbacks.SampleGrid`, in order, each ``float`` ``(B, 3, H, W)`` in
   [0, 1] with the same ``B`` as the batch; called without gradient, in eval mode, on the first
   training batch of an epoch; it changes no state.
4. **Its evaluation role**, by the mixin it inherits (:mod:`histo_gan.training.evaluation`):
   :class:`~histo_gan.training.evaluation.SegmenterEvaluation` (declare ``segmenter()``; whole
   held-out images scored with AJI, Dice, PQ, Hausdorff) or
   :class:`~histo_gan.training.evaluation.SynthesizerEvaluation` (define ``synthesize``; the
   held-out L1, and the realism measures of the ``RealismMonitor`` callback). The mixin writes
   validation, test and predict; a method writes none of them.
5. **Export of synthetic pairs** (synthesizers): ``synthesize(batch) -> SynthesisPrediction``
   (:class:`~histo_gan.types.Synthesizer`): ``batch`` holds at least ``label`` ``int32``
   ``(B, H, W)`` and ``image_id``; the result holds ``image`` ``float32`` ``(B, 3, H, W)`` in
   [0, 1], the exact input ``label`` and ``image_id`` (and optionally ``weight`` ``(B,)``).
   ``predict`` with :class:`~histo_gan.training.evaluation.SynthesizeImages` and the
   :class:`~histo_gan.callbacks.SyntheticExport` callback writes them as a synthetic dataset
   that :class:`~histo_gan.data.SyntheticFolder` reads.
6. **State beyond parameters** (pools, buffers, phase positions) registered with
   :meth:`~histo_gan.training.state.CheckpointedState.register_state`, so resume is exact.
7. **A paper config and a tiny config**: ``conf/model/<method>.yaml`` at paper size, and
   ``conf/experiment/<method>_tiny.yaml``, an overlay of it (``overlays:``) that holds only what
   makes it small; the tiny one is trained by the config test
   (``tests/integration/test_cli.py``) and recorded in the first-step loss fixture.

:class:`TemplateModule` below is such a method: a conditional GAN from a label map to H&E
(pix2pix's objective) in about fifty lines. ``conf/model/template.yaml`` is its paper config and
``conf/experiment/template_tiny.yaml`` trains it on CPU.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

import lightning as L
import torch
from lightning.pytorch.cli import OptimizerCallable
from torch import nn

from histo_gan.inference import padded_call
from histo_gan.losses import GANLoss, VanillaGANLoss, l1_loss
from histo_gan.networks import NormalInit, PatchDiscriminator, UnetGenerator, WeightInit
from histo_gan.training.evaluation import Predictor, SynthesizeImages, SynthesizerEvaluation
from histo_gan.training.gan_steps import NamedUpdates
from histo_gan.training.mask_encoding import MaskEncoding
from histo_gan.training.schedules import ConstantRate
from histo_gan.types import SynthesisPrediction, TrainBatch, to_signed, to_unit

__all__ = ["Method", "TemplateModule"]

COMPONENTS = [
    "generator",
    "discriminator",
    "adversarial_loss",
    "weight_init",
    "generator_optimizer",
    "discriminator_optimizer",
    "lr_schedule",
    "predictor",
]


class Method(Protocol):
    """What the runner and the callbacks call on every method (items 2, 3 and 5 above)."""

    def training_step(self, batch: TrainBatch, batch_idx: int) -> torch.Tensor | None: ...

    def sample_images(self, batch: TrainBatch) -> dict[str, torch.Tensor]: ...


class TemplateModule(SynthesizerEvaluation, NamedUpdates, L.LightningModule):
    """Label map -> H&E with a conditional PatchGAN and an L1 term (pix2pix's objective).

    Args:
        generator: encoded mask ``(B, 3, H, W)`` in [-1, 1] -> H&E in [-1, 1], ``H`` and ``W``
            multiples of ``size_multiple`` (default: U-Net for 256-px patches).
        discriminator: ``D(image, mask)`` -> per-location logits (default: 70x70 PatchGAN
            conditioned on the 3 mask channels).
        adversarial_loss: ``generator_loss(logits)`` / ``discriminator_loss(real, fake)``.
        size_multiple: the generator's size multiple (``2 ** depth`` of a U-Net); whole
            images are reflection-padded to it for synthesis.
        lambda_l1: weight of ``|G(m) - x|_1``.
        weight_init: applied to both networks (default :class:`NormalInit`, N(0, 0.02), as
            pix2pix; :class:`TorchDefaultInit` keeps PyTorch's).
        generator_optimizer, discriminator_optimizer: default Adam(2e-4, (0.5, 0.999)).
        lr_schedule: factor of the initial rates over the budget (default constant).
        boundary_width: boundary thickness of the mask encoding, pixels.
        predictor: what ``predict`` does (default: export (label map, H&E) pairs).
    """

    def __init__(
        self,
        generator: nn.Module | None = None,
        discriminator: nn.Module | None = None,
        adversarial_loss: GANLoss | None = None,
        size_multiple: int = 256,
        lambda_l1: float = 100.0,
        weight_init: WeightInit | None = None,
        generator_optimizer: OptimizerCallable | None = None,
        discriminator_optimizer: OptimizerCallable | None = None,
        lr_schedule: ConstantRate | None = None,
        boundary_width: int = 1,
        predictor: Predictor | None = None,
    ) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.save_hyperparameters(ignore=COMPONENTS)
        self.encoding = MaskEncoding(boundary_width)
        weight_init = weight_init or NormalInit()
        self.G = weight_init(generator or UnetGenerator(3, 3, patch_size=256))
        self.D = weight_init(discriminator or PatchDiscriminator(3, condition_channels=3))
        self.adversarial = adversarial_loss or VanillaGANLoss()
        self.generator_optimizer, self.discriminator_optimizer = (
            generator_optimizer,
            discriminator_optimizer,
        )
        self.lr_schedule = lr_schedule or ConstantRate()
        self.predictor = predictor or SynthesizeImages()

    def synthesize(self, batch: Mapping) -> SynthesisPrediction:
        """Label maps ``int32`` ``(B, H, W)`` of any size -> H&E ``(B, 3, H, W)`` in [0, 1],
        with the exact input labels."""
        mask = self.encoding.encode(batch["label"])
        image = to_unit(padded_call(self.G, mask, self.hparams.size_multiple))
        return {"image": image, "label": batch["label"], "image_id": list(batch["image_id"])}

    def training_step(self, batch: TrainBatch, batch_idx: int) -> None:
        mask, real = self.encoding.encode(batch["label"]), to_signed(batch["image"])
        with self.update("generator") as g:
            fake = self.G(mask)
            adversarial = self.adversarial.generator_loss(self.D(fake, mask))
            l1 = l1_loss(fake, real)
            g.loss = adversarial + self.hparams.lambda_l1 * l1
        with self.update("discriminator") as d:
            d.loss = 0.5 * self.adversarial.discriminator_loss(
                self.D(real, mask), self.D(fake.detach(), mask)
            )
        self.log_dict(
            {
                "train/loss_generator": g.loss.detach(),
                "train/loss_adversarial": adversarial.detach(),
                "train/loss_l1": l1.detach(),
                "train/loss_discriminator": d.loss.detach(),
                "train/lr_factor": g.lr_factor,
            },
            batch_size=len(real),
        )

    def configure_optimizers(self):
        return self.named_optimizers(
            generator=(self.generator_optimizer, self.G.parameters()),
            discriminator=(self.discriminator_optimizer, self.D.parameters()),
        )

    @torch.no_grad()
    def sample_images(self, batch: TrainBatch) -> dict[str, torch.Tensor]:
        """Rows of the sample grid: mask, G(mask), the real image of that mask."""
        mask = self.encoding.encode(batch["label"])
        return {
            "mask": self.encoding.to_rgb(mask),
            "G(mask)": to_unit(self.G(mask)),
            "real": batch["image"],
        }
