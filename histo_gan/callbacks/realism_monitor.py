"""Realism of a generator's samples during training, logged at validation as ``val/realism/*``."""

from __future__ import annotations

import lightning as L
import numpy as np
import torch
from lightning.pytorch.utilities import rank_zero_info

from histo_gan.realism import classifier_two_sample_test, random_patches, stain_distance
from histo_gan.types import Synthesizer

__all__ = ["RealismMonitor"]


def _crops(images: torch.Tensor, size: int, rng: np.random.Generator) -> np.ndarray:
    """One random ``size``-px crop of each image: ``(B, 3, H, W)`` in [0, 1] -> ``uint8``
    ``(B, size, size, 3)`` (:func:`~histo_gan.realism.random_patches`, one per image)."""
    pixels = (images.detach().float().cpu().clamp(0, 1) * 255).round().to(torch.uint8)
    pixels = list(pixels.permute(0, 2, 3, 1).numpy())
    return random_patches(pixels, size, len(pixels), rng)[0]


class RealismMonitor(L.Callback):
    """Logs how far a :class:`~histo_gan.types.Synthesizer`'s samples are from real tissue.

    The first training batches of the run are kept (``num_patches`` samples: label maps, and
    whatever else the module's ``synthesize`` reads, such as the Hou refiners' initial image
    and reference). At the end of every ``every_n_epochs``-th epoch's validation the module
    synthesizes from them, one random ``patch_size`` crop is taken of each sample, and these
    are compared with as many real crops: the batches' ``real`` stream when the data module
    provides one, else crops of the validation images. Logged (floats):

    - ``val/realism/w1_h``, ``val/realism/w1_e``: Wasserstein-1 distance of haematoxylin /
      eosin optical densities (0 = same distribution);
    - ``val/realism/frechet``: Fréchet distance of per-patch stain statistics;
    - ``val/realism/c2st``: every ``c2st_every_n_epochs`` epochs (0: never), the
      held-out accuracy of a critic telling the crops apart (0.5 = indistinguishable; with
      the few crops of a monitor it is noisy, so read its trend);
    - ``val/realism/c2st_se``: with ``c2st_repeats`` of at least 2, the standard error of
      that accuracy over its repeats (sample sd of the repeats' accuracies / sqrt(repeats)):
      how far the same samples would read on another draw of halves and critics, the noise a
      curve judge must not mistake for the generator moving. Each repeat trains two critics
      (a few seconds each at 256 crops of 48 px).

    The same label maps and crop positions are used every time, so epochs are comparable.
    Nothing is measured until ``num_patches`` samples are kept (the first evaluations of a run
    whose epochs are shorter than that are skipped). The kept batches are not checkpointed
    (hundreds of patches would enlarge every checkpoint): a resumed run (a new chunk of
    ``chunked_fit.sh``) keeps its own first batches, so values compare within a chunk exactly
    and across chunks as two samples of the same size.
    Modules that are not Synthesizers (segmenters) are skipped. Under DDP each process
    measures its own batches and the values are averaged.
    """

    def __init__(
        self,
        every_n_epochs: int = 1,
        num_patches: int = 64,
        patch_size: int = 32,
        c2st_every_n_epochs: int = 0,
        c2st_repeats: int = 1,
        seed: int = 0,
    ) -> None:
        if c2st_repeats < 1:
            raise ValueError(f"c2st_repeats must be at least 1, got {c2st_repeats}")
        self.every_n_epochs, self.num_patches, self.patch_size = (
            every_n_epochs,
            num_patches,
            patch_size,
        )
        self.c2st_every_n_epochs, self.c2st_repeats, self.seed = (
            c2st_every_n_epochs,
            c2st_repeats,
            seed,
        )
        self._batches: list[dict] = []
        self._real: list[torch.Tensor] = []
        self._validation: list[np.ndarray] = []
        self._told = False
        self.last: dict[str, float] = {}

    def _captured(self) -> int:
        return sum(len(b["label"]) for b in self._batches)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if not isinstance(pl_module, Synthesizer) or self._captured() >= self.num_patches:
            return
        keep = self.num_patches - self._captured()
        self._batches.append(
            {
                k: v[:keep].detach().cpu()
                if isinstance(v, torch.Tensor)
                else (v[:keep] if isinstance(v, list) else v)
                for k, v in batch.items()
            }
        )
        if "real" in batch:
            self._real.append(batch["real"][:keep].detach().cpu())

    def on_validation_epoch_start(self, trainer, pl_module) -> None:
        self._validation = []
        self._rng = np.random.default_rng(self.seed)

    def on_validation_batch_end(
        self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0
    ) -> None:
        if self._real or not isinstance(pl_module, Synthesizer) or trainer.sanity_checking:
            return
        # num_patches crops per whole image: enough even when there is a single one
        image = batch["image"][:1].expand(self.num_patches, -1, -1, -1)
        self._validation.append(_crops(image, self.patch_size, self._rng))

    @torch.no_grad()
    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        if not isinstance(pl_module, Synthesizer):
            if not self._told:
                rank_zero_info(f"RealismMonitor: {type(pl_module).__name__} is not a Synthesizer")
                self._told = True
            return
        epoch = trainer.current_epoch + 1
        if trainer.sanity_checking or not self._batches or epoch % self.every_n_epochs:
            return
        if self._captured() < self.num_patches:
            # fewer samples would not compare with the other evaluations (a two-sample test on
            # a quarter of the crops reads far closer to chance), so wait until all are kept
            rank_zero_info(
                f"RealismMonitor: {self._captured()} of {self.num_patches} samples kept so far; "
                "not measured until all are"
            )
            return
        rng = np.random.default_rng(self.seed + 1)
        was_training = pl_module.training
        pl_module.eval()
        synthetic = np.concatenate(
            [
                _crops(
                    pl_module.synthesize(self._on(batch, pl_module.device))["image"],
                    self.patch_size,
                    rng,
                )
                for batch in self._batches
            ]
        )
        pl_module.train(was_training)
        if self._real:
            real = _crops(torch.cat(self._real), self.patch_size, rng)
        else:
            pool = np.concatenate(self._validation)
            real = pool[
                np.sort(rng.choice(len(pool), min(len(pool), len(synthetic)), replace=False))
            ]
        stain = stain_distance(real, synthetic, seed=self.seed)
        values = {name: stain[name] for name in ("w1_h", "w1_e", "frechet")}
        if self.c2st_every_n_epochs and epoch % self.c2st_every_n_epochs == 0:
            test = classifier_two_sample_test(
                real, synthetic, seed=self.seed, repeats=self.c2st_repeats
            )
            values["c2st"] = test["accuracy"]
            if self.c2st_repeats > 1:
                repeats = np.asarray(test["repeat_accuracies"])
                values["c2st_se"] = float(repeats.std(ddof=1) / np.sqrt(len(repeats)))
        self.last = values
        for name, value in values.items():
            pl_module.log(f"val/realism/{name}", float(value), sync_dist=True)

    @staticmethod
    def _on(batch: dict, device: torch.device) -> dict:
        return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
