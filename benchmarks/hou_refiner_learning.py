"""Learning checks of the Hou refiner on real MoNuSeg patches (CPU, a few minutes).

1. L_reg only (Algorithm 1, line 2): G starts as a random residual refiner (output head drawn
   with std 0.1, far from the identity; the default init is already near it) and converges towards
   the identity: mean |X - I| over held-out initial patches (images in [0, 1]) before and after.
2. With the adversarial term (G pre-training, D pre-training, G/D rounds): D's accuracy on
   held-out real pairs <S', S> and fake pairs <X, S> moves away from chance, and the refined
   patches' stain statistics move towards the real patches'. Measure: mean haematoxylin and
   eosin optical density (``skimage.color.rgb2hed``) over all pixels of 64 held-out patches;
   the distance ``|mean_refined - mean_real|`` (H and E) against ``|mean_initial - mean_real|``.

Measured on CPU (2 cores, tiny networks, 64-px patches, batch 8): L_reg only, 150
steps at Adam 1e-3: eval-mode mean |X - I| 0.0003 at init (eval-mode batch norm with fresh
running statistics hides the random residual) -> 0.019 after, so this budget does NOT show
convergence to the identity. Adversarial (50 + 50 + 150 rounds, 400 batches): D accuracy on 64
held-out pairs 0.44 -> 0.58; stain distance to the real patches (H, E) 0.0028, 0.0026 for the
initial patches vs 0.0101, 0.0165 for the refined ones: the refined stain moved *away* from the
real patches. Both are open problems (see the report of issue 11).

Usage: python benchmarks/hou_refiner_learning.py [--out /tmp/hou_learning] [--rounds 150]
Needs ../shared/data/monuseg/train (images/, instance_masks/).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import lightning as L
import numpy as np
import torch
from skimage.color import rgb2hed

from histo_gan.cli import main as histo_gan
from histo_gan.data import HistoDataModule, LabelMapFolder, SyntheticFolder
from histo_gan.modules import HardExampleRefinerModule, RefinerSchedule, SegmentationHead
from histo_gan.modules.refiner_steps import RefinerBatch
from histo_gan.networks import PairDiscriminator, ReferenceRefiner, SmpUnet
from histo_gan.types import to_unit

MONUSEG = Path(__file__).resolve().parents[2] / "shared" / "data" / "monuseg" / "train"


def module(schedule: RefinerSchedule, lr: float = 2e-4) -> HardExampleRefinerModule:
    def adam(p):
        return torch.optim.Adam(p, lr=lr, betas=(0.5, 0.999))

    return HardExampleRefinerModule(
        ReferenceRefiner(base_channels=16, texture_channels=16, texture_convs=3, blocks=2),
        PairDiscriminator(base_channels=16, texture_channels=16, texture_convs=3,
                          convs_per_stage=2),
        SegmentationHead(SmpUnet("resnet18", 3, (16, 8, 4)), boundary_width=1),
        schedule=schedule, history_size=256, generator_optimizer=adam,
        discriminator_optimizer=adam,
    )  # fmt: skip


def data(initial: Path, seed: int, patches: int, batch: int) -> HistoDataModule:
    return HistoDataModule(
        source=LabelMapFolder(MONUSEG / "images", MONUSEG / "instance_masks"),
        synthetic=SyntheticFolder(initial), synthetic_ratio=1.0, reference="same_image",
        unpaired_real=True, patch_size=64, patches_per_epoch=patches, batch_size=batch,
        seed=seed, augment=seed == 0,
    )  # fmt: skip


def stain(images: torch.Tensor) -> np.ndarray:
    """Mean (H, E) optical density of ``(B, 3, H, W)`` images in [0, 1]."""
    hed = rgb2hed(images.permute(0, 2, 3, 1).reshape(-1, 1, 3).numpy().astype(np.float64))
    return hed.reshape(-1, 3)[:, :2].mean(axis=0)


@torch.no_grad()
def measure(m: HardExampleRefinerModule, held_out: dict) -> dict:
    m.eval()
    view = RefinerBatch.from_batch(held_out)
    refined = m.G(view.initial, view.reference)
    p_real = torch.sigmoid(m.D(view.real, view.real_reference)).flatten(1).mean(1)
    p_fake = torch.sigmoid(m.D(refined, view.reference)).flatten(1).mean(1)
    m.train()
    real, initial, out = stain(held_out["real"]), stain(held_out["image"]), stain(to_unit(refined))
    return {
        "mean_abs_change": float((to_unit(refined) - held_out["image"]).abs().mean()),
        "d_accuracy": float(((p_real > 0.5).float().mean() + (p_fake <= 0.5).float().mean()) / 2),
        "d_accuracy_real": float((p_real > 0.5).float().mean()),
        "d_accuracy_fake": float((p_fake <= 0.5).float().mean()),
        "stain_real_HE": real.tolist(), "stain_initial_HE": initial.tolist(),
        "stain_refined_HE": out.tolist(),
        "stain_distance_initial": np.abs(initial - real).tolist(),
        "stain_distance_refined": np.abs(out - real).tolist(),
    }  # fmt: skip


def fit(m, dm, batches: int) -> float:
    start = time.time()
    L.Trainer(max_steps=batches, max_epochs=-1, accelerator="cpu", logger=False,
              enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
              limit_val_batches=0).fit(m, dm)  # fmt: skip
    return time.time() - start


def run(out: Path, rounds: int, identity_steps: int) -> dict:
    initial = out / "initial"
    if not (initial / "manifest.jsonl").exists():
        assert histo_gan(["synthesize", "--source", str(MONUSEG / "images"), "--out", str(initial),
                          "--method", "hou", "--n", "96", "--size", "96", "--seed", "0"]) == 0  # fmt: skip
    held_out = next(iter(data(initial, seed=99, patches=64, batch=64).train_dataloader()))
    results = {}

    L.seed_everything(0)
    identity = module(RefinerSchedule(identity_steps, 0, 0, 0, 0, final_segmenter_steps=0), 1e-3)
    torch.nn.init.normal_(identity.G.head.weight, 0.0, 0.1)  # start far from the identity
    before = measure(identity, held_out)["mean_abs_change"]
    seconds = fit(identity, data(initial, 0, 8 * identity_steps, 8), identity_steps)
    after = measure(identity, held_out)["mean_abs_change"]
    results["identity"] = {"steps": identity_steps, "mean_abs_change_before": before,
                           "mean_abs_change_after": after, "seconds": seconds}  # fmt: skip
    print(json.dumps(results["identity"]), flush=True)

    L.seed_everything(0)
    schedule = RefinerSchedule(50, 50, rounds, 0, 0, 1, 1, 0, 0)
    adversarial = module(schedule)
    results["adversarial_before"] = measure(adversarial, held_out)
    seconds = fit(adversarial, data(initial, 0, 8 * schedule.total, 8), schedule.total)
    results["adversarial_after"] = measure(adversarial, held_out) | {"batches": schedule.total,
                                                                    "seconds": seconds}  # fmt: skip
    print(json.dumps(results, indent=1), flush=True)
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/hou_learning"))
    parser.add_argument("--rounds", type=int, default=150)
    parser.add_argument("--identity-steps", type=int, default=150)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(run(args.out, args.rounds,
                                                          args.identity_steps), indent=1))  # fmt: skip
