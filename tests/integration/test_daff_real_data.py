"""Learning check of DAFF-GAN's stage 2 on real MoNuSeg (label map, H&E) pairs, CPU.

A small global generator trained with the full stage-2 objective (LSGAN + feature matching 10 +
L1 10) on 64-px patches of three MoNuSeg images must reproduce held-out pairs of a fourth image
(another organ) much better than at initialisation: the mean absolute error in [0, 1] units over
16 fixed crops falls at least 1.5x within 100 batches of 8 (one epoch). Measured at 100 batches,
seeds 0/1/2: 0.304 -> 0.130 (2.34x), 0.242 -> 0.129 (1.88x), 0.214 -> 0.135 (1.58x). The rate is
constant and the adversarial term makes the error swing afterwards (at 150 batches 1.68x, 1.18x,
1.16x; seed 0 at 300: 2.02x), so the check is taken where every seed had already improved.
"""

from __future__ import annotations

import lightning as L
import pytest
import torch

from histo_gan.data import FixedSplit, HistoDataModule, LabelMapFolder
from histo_gan.modules import Pix2PixHDModule
from histo_gan.networks import GlobalGenerator, MultiscaleDiscriminator
from histo_gan.training import ConstantRate, MaskToImage

pytestmark = [pytest.mark.real_data, pytest.mark.slow]

TRAIN = ["TCGA-A7-A13E-01Z-00-DX1", "TCGA-B0-5711-01Z-00-DX1", "TCGA-18-5592-01Z-00-DX1"]
HELD_OUT = "TCGA-G9-6336-01Z-00-DX1"  # prostate; the training images are breast, kidney, liver
FACTOR_REQUIRED = 1.5


def held_out_error(module: Pix2PixHDModule, pairs: list[dict]) -> float:
    module.eval()
    with torch.no_grad():
        errors = [
            (module(module.pairing.inputs(p)) - module.pairing.targets(p)).abs().mean() / 2
            for p in pairs
        ]
    module.train()
    return float(torch.stack(errors).mean())


def test_stage2_objective_reduces_held_out_reconstruction_error(tmp_path, shared_data):
    L.seed_everything(0)
    source = LabelMapFolder(shared_data / "images", shared_data / "instance_masks")
    split = FixedSplit(train=TRAIN, val=[HELD_OUT], test=["TCGA-G9-6348-01Z-00-DX1"])
    dm = HistoDataModule(source, split, patch_size=64, patches_per_epoch=800, batch_size=8)
    dm.setup("fit")
    whole = dm.val_dataloader().dataset[0]
    pairs = [  # 16 fixed 64-px crops spread over the held-out image
        {
            "image": whole["image"][None, :, y : y + 64, x : x + 64],
            "label": whole["label"][None, y : y + 64, x : x + 64],
        }
        for y in range(100, 900, 200)
        for x in range(100, 900, 200)
    ]
    module = Pix2PixHDModule(
        GlobalGenerator(3, 3, base_channels=16, n_downsampling=3, n_blocks=3),
        MaskToImage(boundary_width=1),
        MultiscaleDiscriminator(3, base_channels=16, n_layers=2, condition_channels=3),
        lambda_l1=10.0,
        generator_optimizer=lambda p: torch.optim.Adam(p, lr=1e-3, betas=(0.5, 0.999)),
        discriminator_optimizer=lambda p: torch.optim.Adam(p, lr=1e-3, betas=(0.5, 0.999)),
        lr_schedule=ConstantRate(),
    )
    before = held_out_error(module, pairs)
    trainer = L.Trainer(
        accelerator="cpu",
        max_epochs=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        default_root_dir=tmp_path,
    )
    trainer.fit(module, dm)
    after = held_out_error(module, pairs)
    print(f"held-out L1: {before:.4f} -> {after:.4f} ({before / after:.2f}x)")
    assert before / after >= FACTOR_REQUIRED, (before, after)
