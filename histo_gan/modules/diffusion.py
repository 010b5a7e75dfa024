"""Mask-conditioned denoising diffusion (NuDiff-style, Yu et al. 2023) on ``diffusers``.

A denoiser (``diffusers.UNet2DModel``) learns ``eps(x_t, t | mask)``: the noisy H&E image
``x_t`` (3 channels, [-1, 1]) concatenated with the encoded label map (:class:`MaskCondition`:
background / interior / boundary one-hot, the encoding of the other mask-to-image methods,
plus a per-nucleus distance channel) on the input channels. Training: diffusers'
``DDPMScheduler`` noises real (label map, image) patches at uniform random timesteps and the
loss is the mean squared error to the scheduler's target (``epsilon``, ``v_prediction`` or
``sample``), computed in fp32. With probability ``condition_dropout`` the condition of a
sample is replaced by the null condition (all zeros, a value no encoded mask takes), so the
same network also learns the unconditional model for classifier-free guidance.

Sampling (``synthesize``, ``sample``): a diffusers sampler (``DDIMScheduler`` by default,
or ``DPMSolverMultistepScheduler``) with ``sampling_steps`` steps, guided by
``eps_u + guidance_scale * (eps_c - eps_u)``, from the EMA copy of the weights
(``diffusers.training_utils.EMAModel``; its state is in checkpoints, so a resumed run
continues with the same average). The initial noise of each sample is drawn from a generator
seeded by ``(sample_seed, image_id)``, so a sample depends only on its mask, its id and the
seed: the same on any batch composition, process count or device, and deterministic with DDIM
(``eta`` 0) or DPM-Solver.

The training noise, timesteps and condition dropout of a step are drawn from a generator
seeded by ``(seed, rank, global_step)``: no random state beyond the step counter, so resume is
exact. One optimizer (``denoiser``, AdamW by default) is stepped in one
:meth:`~histo_gan.training.gan_steps.NamedUpdates.update` block, with gradient-norm clipping and
the learning rate of :class:`LinearWarmup` (a :class:`~histo_gan.training.schedules.ConstantRate`);
the EMA is updated after each step.

Evaluation role: a synthesizer (:class:`~histo_gan.training.evaluation.SynthesizerEvaluation`:
held-out L1 of whole images at validation and test, so keep ``limit_val_batches`` 0 where a
whole-image sampling run is too slow). ``predict`` exports (label map, H&E) pairs through
:class:`SynthesizeImages` and :class:`~histo_gan.callbacks.SyntheticExport`; masks come from any
labeled source (real label maps, :class:`~histo_gan.data.GeneratedMasks`, a
``histo-gan synthesize`` dataset).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from functools import partial

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from diffusers import DDIMScheduler, DDPMScheduler, SchedulerMixin
from diffusers.training_utils import EMAModel
from lightning.pytorch.cli import OptimizerCallable
from scipy import ndimage
from torch import nn

from histo_gan.training.evaluation import Predictor, SynthesizeImages, SynthesizerEvaluation
from histo_gan.training.gan_steps import NamedUpdates
from histo_gan.training.mask_encoding import MaskEncoding
from histo_gan.training.schedules import ConstantRate
from histo_gan.training.state import CheckpointedState
from histo_gan.types import SynthesisPrediction, TrainBatch, to_signed, to_unit

__all__ = ["DiffusionModule", "LinearWarmup", "MaskCondition"]

COMPONENTS = [
    "denoiser",
    "condition",
    "noise_scheduler",
    "sampler",
    "optimizer",
    "lr_schedule",
    "predictor",
]

# The noise-schedule options a sampler takes over from the training scheduler.
SCHEDULE_KEYS = (
    "num_train_timesteps",
    "beta_start",
    "beta_end",
    "beta_schedule",
    "trained_betas",
    "prediction_type",
)


class MaskCondition:
    """Label maps as the denoiser's condition channels.

    Channels 0-2: :class:`MaskEncoding` (background / interior / boundary one-hot in {-1, 1});
    channel 3 (``distance``): inside each nucleus, the Euclidean distance to its edge (the
    nearest background or boundary pixel, plus one) over that nucleus' largest, mapped from
    (0, 1] to (-1, 1]; -1 on the background. It tells the network where a nucleus' centre is
    and keeps touching nuclei apart beyond the thin boundary band.

    Args:
        boundary_width: boundary thickness in pixels.
        distance: add the distance channel.
    """

    def __init__(self, boundary_width: int = 1, distance: bool = True) -> None:
        self.encoding = MaskEncoding(boundary_width)
        self.distance = distance

    @property
    def channels(self) -> int:
        return 3 + int(self.distance)

    def encode(self, label: torch.Tensor) -> torch.Tensor:
        """``int`` ``(B, H, W)`` label maps -> ``float32`` ``(B, channels, H, W)`` in [-1, 1]."""
        onehot = self.encoding.encode(label)
        if not self.distance:
            return onehot
        interior = (onehot[:, 1] > 0).cpu().numpy()
        labels = label.cpu().numpy()
        maps = np.stack([normalised_distance(i, lab) for i, lab in zip(interior, labels)])
        distance = torch.from_numpy(maps).to(onehot.device)[:, None] * 2.0 - 1.0
        return torch.cat([onehot, distance], 1)

    def null(self, like: torch.Tensor) -> torch.Tensor:
        """The condition of "no mask" (classifier-free guidance): zeros shaped like ``like``."""
        return torch.zeros_like(like)

    def picture(self, condition: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` picture in [0, 1]: interior white, boundary red."""
        return self.encoding.to_rgb(condition[:, :3])


def normalised_distance(interior: np.ndarray, label: np.ndarray) -> np.ndarray:
    """Per-nucleus distance map ``float32`` ``(H, W)``: 0 on the background, in (0, 1] inside.

    ``interior`` is the ``bool`` interior (foreground without boundary) and ``label`` the
    instance map; boundary pixels get the smallest value, ``1 / (max + 1)`` of their nucleus.
    """
    distance = ndimage.distance_transform_edt(interior).astype(np.float32) + 1.0
    distance[label == 0] = 0.0
    ids, inverse = np.unique(label, return_inverse=True)
    largest = np.zeros(len(ids), np.float32)
    np.maximum.at(largest, inverse.ravel(), distance.ravel())
    scale = largest[inverse].reshape(label.shape)
    return np.divide(distance, scale, out=np.zeros_like(distance), where=scale > 0)


class LinearWarmup(ConstantRate):
    """Learning rate ``initial * min(1, global_step / warmup_steps)``, then constant (the
    schedule of diffusers' ``get_constant_schedule_with_warmup``; the first step has rate 0).

    Args:
        warmup_steps: optimizer steps of the linear ramp (0: constant from the start).
    """

    def __init__(self, warmup_steps: int = 500) -> None:
        if warmup_steps < 0:
            raise ValueError(f"warmup_steps must be >= 0, got {warmup_steps}")
        self.warmup_steps = warmup_steps
        self._step = 0

    def factor(self, progress) -> float:
        return 1.0 if self.warmup_steps == 0 else min(1.0, self._step / self.warmup_steps)

    def apply(self, optimizers, trainer) -> float:
        self._step = trainer.global_step
        return super().apply(optimizers, trainer)


def _seed(*parts: object) -> int:
    """A stable 63-bit seed from ``parts`` (numpy's SeedSequence over their CRC-32s)."""
    words = [zlib.crc32(str(part).encode()) for part in parts]
    return int(np.random.SeedSequence(words).generate_state(2, np.uint64)[0] >> np.uint64(1))


class DiffusionModule(SynthesizerEvaluation, NamedUpdates, CheckpointedState, L.LightningModule):
    """Label map -> H&E by conditional denoising diffusion with classifier-free guidance.

    Args:
        denoiser: ``UNet2DModel``-like: ``denoiser(x, t).sample`` with ``x`` ``(B, 3 +
            condition.channels, H, W)`` and ``t`` ``int64`` ``(B,)`` -> ``(B, 3, H, W)``.
        condition: label map -> condition channels (default :class:`MaskCondition`).
        noise_scheduler: the training noise schedule (default ``DDPMScheduler``, 1000 steps,
            linear betas, epsilon prediction).
        sampler: the sampling scheduler (default ``DDIMScheduler``); it takes the noise-schedule
            options (``SCHEDULE_KEYS``) of ``noise_scheduler`` and keeps its own others.
        sampling_steps: denoising steps per sample.
        heldout_sampling_steps: the steps of the held-out L1's whole-image samples at
            validation and test (None: ``sampling_steps``). Few steps give a blurry sample near
            the conditional mean: cheap, and it tracks training, but it is not a realism
            measure (the ``RealismMonitor`` and ``histo-gan realism`` sample with
            ``sampling_steps``).
        condition_dropout: probability p that a training sample's condition is the null one.
        guidance_scale: w of ``eps_u + w (eps_c - eps_u)``; 1 samples the conditional model
            alone (one network pass per step instead of two).
        ema_decay: largest decay of the EMA of the weights (None: no EMA, sample the weights).
        ema_warmup: diffusers' warmup ``1 - (1 + step / inv_gamma) ** -power`` of the decay
            (``ema_inv_gamma``, ``ema_power``); else its ``(1 + step) / (10 + step)``.
        optimizer: optimizer factory of the denoiser (default AdamW, lr 1e-4, weight decay 1e-2).
        lr_schedule: factor of the initial rate (default :class:`LinearWarmup`, 500 steps).
        gradient_clip_norm: clip the gradients' total norm to this (None: no clipping).
        size_multiple: label maps are reflection-padded to multiples of this for sampling
            (``2 ** (down blocks - 1)`` of a UNet2DModel) and the samples cropped back.
        seed: seed of the training noise, timesteps and condition dropout.
        sample_seed: seed of the sampling noise.
        predictor: what ``predict`` does (default :class:`SynthesizeImages`).
    """

    def __init__(
        self,
        denoiser: nn.Module,
        condition: MaskCondition | None = None,
        noise_scheduler: SchedulerMixin | None = None,
        sampler: SchedulerMixin | None = None,
        sampling_steps: int = 50,
        heldout_sampling_steps: int | None = None,
        condition_dropout: float = 0.1,
        guidance_scale: float = 2.0,
        ema_decay: float | None = 0.9999,
        ema_warmup: bool = True,
        ema_inv_gamma: float = 1.0,
        ema_power: float = 2 / 3,
        optimizer: OptimizerCallable | None = None,
        lr_schedule: ConstantRate | None = None,
        gradient_clip_norm: float | None = 1.0,
        size_multiple: int = 1,
        seed: int = 0,
        sample_seed: int = 0,
        predictor: Predictor | None = None,
    ) -> None:
        super().__init__()
        self.automatic_optimization = False
        if not 0.0 <= condition_dropout < 1.0:
            raise ValueError(f"condition_dropout must be in [0, 1), got {condition_dropout}")
        if guidance_scale != 1.0 and condition_dropout == 0.0:
            raise ValueError("guidance needs an unconditional model: set condition_dropout > 0")
        self.save_hyperparameters(ignore=COMPONENTS)
        self.denoiser = denoiser
        self.condition = condition or MaskCondition()
        expected = 3 + self.condition.channels
        in_channels = getattr(getattr(denoiser, "config", None), "in_channels", expected)
        if in_channels != expected:
            raise ValueError(
                f"the denoiser takes {in_channels} input channels; 3 image + "
                f"{self.condition.channels} condition channels = {expected}"
            )
        self.noise_scheduler = noise_scheduler or DDPMScheduler()
        sampler = sampler or DDIMScheduler()
        schedule = {k: self.noise_scheduler.config[k] for k in SCHEDULE_KEYS}
        self.sampler = type(sampler).from_config({**sampler.config, **schedule})
        self.ema = None
        if ema_decay is not None:
            self.ema = EMAModel(
                self.denoiser.parameters(),
                decay=ema_decay,
                use_ema_warmup=ema_warmup,
                inv_gamma=ema_inv_gamma,
                power=ema_power,
            )
            self.register_state("ema", self.ema)
        self.denoiser_optimizer = optimizer or partial(
            torch.optim.AdamW, lr=1e-4, weight_decay=1e-2
        )
        self.lr_schedule = lr_schedule or LinearWarmup()
        self.predictor = predictor or SynthesizeImages()
        self._heldout_steps: int | None = None  # set while a held-out batch is synthesized

    # -- training --------------------------------------------------------------------------
    def _draws(self, x0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """This step's ``(noise, timesteps, dropped)``, a function of (seed, rank, step) only."""
        generator = torch.Generator().manual_seed(
            _seed(self.hparams.seed, self.global_rank, self.global_step)
        )
        n = len(x0)
        noise = torch.randn(x0.shape, generator=generator)
        steps = self.noise_scheduler.config.num_train_timesteps
        timesteps = torch.randint(0, steps, (n,), generator=generator)
        dropped = torch.rand(n, generator=generator) < self.hparams.condition_dropout
        return noise.to(x0), timesteps.to(x0.device), dropped.to(x0.device)

    def _target(self, x0: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor):
        kind = self.noise_scheduler.config.prediction_type
        if kind == "epsilon":
            return noise
        if kind == "v_prediction":
            return self.noise_scheduler.get_velocity(x0, noise, timesteps)
        if kind == "sample":
            return x0
        raise ValueError(f"unknown prediction_type {kind!r}")

    def denoising_loss(self, batch: Mapping) -> torch.Tensor:
        """fp32 MSE of the denoiser's prediction for this step's noise, timesteps and dropout."""
        x0 = to_signed(batch["image"].float())
        condition = self.condition.encode(batch["label"])
        noise, timesteps, dropped = self._draws(x0)
        condition = torch.where(
            dropped[:, None, None, None], self.condition.null(condition), condition
        )
        noisy = self.noise_scheduler.add_noise(x0, noise, timesteps)
        prediction = self.denoiser(torch.cat([noisy, condition], 1), timesteps).sample
        return F.mse_loss(prediction.float(), self._target(x0, noise, timesteps).float())

    def training_step(self, batch: TrainBatch, batch_idx: int) -> None:
        with self.update("denoiser", clip_norm=self.hparams.gradient_clip_norm) as step:
            step.loss = self.denoising_loss(batch)
        if self.ema is not None:
            self.ema.step(self.denoiser.parameters())
        values = {"train/loss": step.loss.detach(), "train/lr_factor": step.lr_factor}
        if self.ema is not None:
            values["train/ema_decay"] = float(self.ema.cur_decay_value or 0.0)
        self.log_dict(values, batch_size=len(batch["image"]))

    def on_fit_start(self) -> None:
        if self.ema is not None:
            self.ema.to(self.device)

    def configure_optimizers(self):
        return self.named_optimizers(denoiser=(self.denoiser_optimizer, self.denoiser.parameters()))

    # -- sampling --------------------------------------------------------------------------
    @contextmanager
    def ema_weights(self) -> Iterator[None]:
        """The denoiser holds the EMA weights inside the block (its own ones again after)."""
        if self.ema is None:
            yield
            return
        parameters = list(self.denoiser.parameters())
        self.ema.store(parameters)
        self.ema.copy_to(parameters)
        try:
            yield
        finally:
            self.ema.restore(parameters)

    def initial_noise(self, image_ids: list[str], shape: tuple[int, int]) -> torch.Tensor:
        """``float32`` ``(B, 3, H, W)`` standard normal noise, sample ``k`` seeded by
        ``(sample_seed, image_ids[k])``, on the module's device."""
        noise = [
            torch.randn(
                (3, *shape),
                generator=torch.Generator().manual_seed(
                    _seed("sample", self.hparams.sample_seed, image_id)
                ),
            )
            for image_id in image_ids
        ]
        return torch.stack(noise).to(self.device)

    def _guided(self, x: torch.Tensor, t: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        w = self.hparams.guidance_scale
        if w == 1.0:
            return self.denoiser(torch.cat([x, condition], 1), t).sample.float()
        both = torch.cat(
            [torch.cat([x, condition], 1), torch.cat([x, self.condition.null(condition)], 1)]
        )
        conditional, unconditional = self.denoiser(both, torch.cat([t, t])).sample.float().chunk(2)
        return unconditional + w * (conditional - unconditional)

    @torch.no_grad()
    def sample(self, label: torch.Tensor, image_ids: list[str]) -> torch.Tensor:
        """Label maps ``int`` ``(B, H, W)`` -> synthetic H&E ``float32`` ``(B, 3, H, W)`` in [0, 1].

        Label maps of any size: reflection-padded to multiples of ``size_multiple`` (the
        initial noise is drawn at the padded size), the samples cropped back.
        """
        h, w = label.shape[-2:]
        m = self.hparams.size_multiple
        label = label.to(self.device)
        if h % m or w % m:
            padded = F.pad(label[:, None].float(), (0, -w % m, 0, -h % m), mode="reflect")
            label = padded[:, 0].to(torch.int32)
        condition = self.condition.encode(label)
        x = self.initial_noise(list(image_ids), tuple(label.shape[-2:]))
        x = x * self.sampler.init_noise_sigma
        steps = self._heldout_steps or self.hparams.sampling_steps
        self.sampler.set_timesteps(steps, device=self.device)
        with self.ema_weights():
            for t in self.sampler.timesteps:
                model_input = self.sampler.scale_model_input(x, t)
                timesteps = t.expand(len(x)).to(self.device)
                x = self.sampler.step(
                    self._guided(model_input, timesteps, condition), t, x
                ).prev_sample
        return to_unit(x.float())[..., :h, :w]

    # The held-out L1 (SynthesizerEvaluation) samples with heldout_sampling_steps; anything else
    # that synthesizes during validation (the RealismMonitor, at epoch end) with sampling_steps.
    def on_validation_batch_start(self, batch, batch_idx: int, dataloader_idx: int = 0) -> None:
        self._heldout_steps = self.hparams.heldout_sampling_steps

    def on_validation_batch_end(self, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self._heldout_steps = None

    on_test_batch_start = on_validation_batch_start
    on_test_batch_end = on_validation_batch_end

    def synthesize(self, batch: Mapping) -> SynthesisPrediction:
        """Label maps -> synthetic H&E (:class:`~histo_gan.types.Synthesizer`)."""
        image = self.sample(batch["label"], list(batch["image_id"]))
        return {"image": image, "label": batch["label"], "image_id": list(batch["image_id"])}

    @torch.no_grad()
    def sample_images(self, batch: TrainBatch) -> dict[str, torch.Tensor]:
        """Rows of the sample grid: mask, sample from the mask (EMA weights), real image."""
        return {
            "mask": self.condition.picture(self.condition.encode(batch["label"])),
            "sample": self.sample(batch["label"], list(batch["image_id"])),
            "real": batch["image"].float(),
        }
