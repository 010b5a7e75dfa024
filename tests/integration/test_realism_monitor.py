"""RealismMonitor on a tiny CycleGAN and the bundled sample: finite ``val/realism/*`` values."""

from __future__ import annotations

import csv
import math

import lightning as L
import numpy as np
import pytest
import torch

from histo_gan.callbacks.realism_monitor import RealismMonitor, _crops
from histo_gan.data import GeneratedMasks, HistoDataModule
from histo_gan.inference import SlidingWindow
from histo_gan.modules import CycleGANModule
from histo_gan.networks import PatchDiscriminator, ResnetGenerator
from histo_gan.realism import stain_distance
from histo_gan.synthesis import RandomPolygonMasks


def _tiny_cyclegan_run(tmp_path, monitor: RealismMonitor, epochs: int) -> L.Trainer:
    """A tiny CycleGAN on random polygon masks and the bundled sample, 16 patches an epoch."""

    def generator():
        return ResnetGenerator(3, 3, base_channels=8, n_blocks=2)

    def discriminator():
        return PatchDiscriminator(3, base_channels=8, n_layers=2, spectral_norm=True)

    module = CycleGANModule(
        generator(),
        generator(),
        discriminator(),
        discriminator(),
        pool_size=4,
        sliding_window=SlidingWindow(64, 0.25, 8),
    )
    masks = GeneratedMasks(RandomPolygonMasks(max_overlap=0.1), n=32, size=64, seed=0)
    dm = HistoDataModule(
        synthetic=masks,
        synthetic_ratio=1.0,
        unpaired_real=True,
        patch_size=64,
        patches_per_epoch=16,
        batch_size=4,
    )
    trainer = L.Trainer(
        max_epochs=epochs,
        accelerator="cpu",
        default_root_dir=tmp_path,
        logger=L.pytorch.loggers.CSVLogger(tmp_path),
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[monitor],
    )
    trainer.fit(module, dm)
    return trainer


def test_monitor_logs_finite_realism_of_a_cyclegan(tmp_path):
    monitor = RealismMonitor(
        every_n_epochs=1, num_patches=12, patch_size=32, c2st_every_n_epochs=2, c2st_repeats=2
    )
    trainer = _tiny_cyclegan_run(tmp_path, monitor, epochs=2)
    assert sum(len(b["label"]) for b in monitor._batches) == 12
    names = ("w1_h", "w1_e", "frechet", "c2st", "c2st_se")
    values = {n: float(trainer.callback_metrics[f"val/realism/{n}"]) for n in names}
    assert all(math.isfinite(v) for v in values.values()), values
    assert values["w1_h"] > 0 and values["frechet"] > 0  # an untrained generator is not tissue
    assert 0 <= values["c2st"] <= 1
    # two repeats: their accuracies are c2st -/+ se (sd / sqrt(2) = |a1 - a2| / 2), and each
    # is a whole number of the 24 held-out crops (every crop its own image) over 24
    for repeat in (values["c2st"] - values["c2st_se"], values["c2st"] + values["c2st_se"]):
        assert abs(repeat * 24 - round(repeat * 24)) < 1e-4, values


def test_c2st_repeats_must_be_positive():
    with pytest.raises(ValueError, match="c2st_repeats must be at least 1"):
        RealismMonitor(c2st_repeats=0)


def test_nothing_is_measured_before_all_samples_are_kept(tmp_path):
    """24 samples at 16 patches an epoch: the first epoch's evaluation is skipped (a test on
    16 crops would not compare with the later ones on 24), the second one measures."""
    monitor = RealismMonitor(every_n_epochs=1, num_patches=24, patch_size=32)
    _tiny_cyclegan_run(tmp_path, monitor, epochs=2)
    (metrics,) = tmp_path.glob("lightning_logs/version_*/metrics.csv")
    with open(metrics, newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r.get("val/realism/w1_h")]
    assert [int(r["epoch"]) for r in rows] == [1]


def test_identical_crops_are_at_stain_distance_zero_and_segmenters_are_skipped():
    images = torch.rand(6, 3, 40, 40)
    crops = _crops(images, 32, np.random.default_rng(0))
    assert crops.shape == (6, 32, 32, 3) and crops.dtype == np.uint8
    same = stain_distance(crops, crops)
    assert same["w1_h"] == same["w1_e"] == 0 and abs(same["frechet"]) < 1e-9
    monitor = RealismMonitor(num_patches=4)
    monitor.on_train_batch_start(None, torch.nn.Linear(1, 1), {"label": torch.zeros(2, 8, 8)}, 0)
    assert monitor._batches == []
