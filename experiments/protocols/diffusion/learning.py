"""Learning evidence of the diffusion method at CPU size: loss curve, realism by checkpoint, grid.

    python experiments/protocols/diffusion/learning.py \\
        --snapshots runs/protocols/diffusion_cpu/snapshots/epoch_*.ckpt

- **Loss curve**: ``train/loss`` of every chunk's ``metrics.csv`` (``runs/protocols/diffusion_cpu/
  version_*``), by step, to ``loss.csv`` and ``loss.png`` (raw and a 100-step trailing mean).
- **Realism by checkpoint**: masks are random 64-px crops of the label maps of main.json's held-out
  images (4 validation + 11 test, never trained on; ``--per-image`` crops each, at least 5 %
  nucleus pixels); each checkpoint's EMA sampler (``sampling_steps`` DDIM steps, guidance as
  configured, sample seed 0) turns them into H&E, which is compared with the real crops at the
  same places with :func:`~histo_gan.realism.classifier_two_sample_test` (images as groups) and
  :func:`~histo_gan.realism.stain_distance`. The same measures between real crops of the 15
  training images and the held-out real crops give the real-vs-real reference.
- **Sample grid** (last checkpoint): rows mask | generated | the real crop of that mask (same
  image, so the same organ), one column per organ and then more.

Writes ``loss.csv``, ``loss.png``, ``realism.csv``, ``learning.json`` and ``samples.png`` to
``--out``.
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

import lightning as L
import numpy as np
import torch
import yaml
from jsonargparse import ArgumentParser

from histo_gan.data import LabelMapFolder
from histo_gan.data.organs import OrganTable
from histo_gan.realism import classifier_two_sample_test, stain_distance

REPO = Path(__file__).resolve().parents[3]


def build_module(config: Path) -> L.LightningModule:
    """The config's ``model`` (class_path / init_args), instantiated as the CLI would."""
    parser = ArgumentParser()
    parser.add_subclass_arguments(L.LightningModule, "model", required=True)
    model = yaml.safe_load(config.read_text())["model"]
    instantiate = getattr(parser, "instantiate", None) or parser.instantiate_classes
    return instantiate(parser.parse_object({"model": model})).model


def load(module: L.LightningModule, checkpoint: Path) -> dict:
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    module.load_state_dict(state["state_dict"])
    module.on_load_checkpoint(state)  # the EMA (module_state)
    return state


def crops(source, ids, size, per_image, rng, min_foreground=0.05):
    """``per_image`` random crops of each image: masks ``int32`` (N, s, s), images ``uint8``
    (N, s, s, 3), groups (N,) and organs; with labels, crops need ``min_foreground`` nuclei."""
    index = {image_id: k for k, image_id in enumerate(source.image_ids)}
    masks, images, groups, organs = [], [], [], []
    table = OrganTable()
    for g, image_id in enumerate(ids):
        item = source.load(index[image_id])
        h, w = item.image.shape[:2]
        found = 0
        for _ in range(200 * per_image):
            y, x = int(rng.integers(0, h - size + 1)), int(rng.integers(0, w - size + 1))
            label = item.label[y : y + size, x : x + size]
            if (label > 0).mean() < min_foreground:
                continue
            masks.append(label.astype(np.int32))
            images.append(item.image[y : y + size, x : x + size, :3])
            groups.append(g)
            organs.append(table.organ_of(image_id))
            found += 1
            if found == per_image:
                break
    return np.stack(masks), np.stack(images), np.array(groups), organs


def realism(real, real_groups, synthetic, synthetic_groups, seed=0) -> dict:
    c2st = classifier_two_sample_test(real, synthetic, real_groups, synthetic_groups, seed=seed)
    stain = stain_distance(real, synthetic, seed=seed)
    return {
        "c2st": c2st["accuracy"],
        "c2st_low": c2st["ci_low"],
        "c2st_high": c2st["ci_high"],
        **{k: stain[k] for k in ("w1_h", "w1_e", "frechet")},
    }


@torch.no_grad()
def sample(module, masks: np.ndarray, batch_size: int) -> np.ndarray:
    module.eval()
    out = []
    for start in range(0, len(masks), batch_size):
        label = torch.from_numpy(masks[start : start + batch_size])
        ids = [f"heldout{k:04d}" for k in range(start, start + len(label))]
        with torch.autocast("cpu", dtype=torch.bfloat16):
            images = module.sample(label, ids)
        out.append((images.float().permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8))
    return np.concatenate(out)


def loss_curve(runs: Path, out: Path) -> list[tuple[int, float]]:
    by_step: dict[int, float] = {}
    for metrics in sorted(runs.glob("version_*/metrics.csv")):
        for row in csv.DictReader(metrics.open()):
            if row.get("train/loss"):
                by_step[int(row["step"])] = float(row["train/loss"])
    rows = sorted(by_step.items())
    with (out / "loss.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["step", "train_loss"])
        writer.writerows(rows)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps, losses = np.array(rows).T
    window = max(1, min(5, len(losses)))  # logged every 20 steps: 5 points = 100 steps
    smooth = np.convolve(losses, np.ones(window) / window, mode="valid")
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(steps, losses, lw=0.6, alpha=0.5, label="train/loss (every 20 steps)")
    ax.plot(steps[window - 1 :], smooth, lw=1.5, label="trailing mean, 100 steps")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("denoising MSE (epsilon)")
    ax.set_yscale("log")
    ax.legend()
    ax.set_title("diffusion, CPU size (64 px, batch 8)")
    fig.tight_layout()
    fig.savefig(out / "loss.png", dpi=120)
    return rows


def grid(masks, generated, real, organs, module, out: Path, columns: int = 8) -> None:
    from torchvision.utils import make_grid, save_image

    order, seen = [], set()
    for k, organ in enumerate(organs):  # one column per organ first
        if organ not in seen:
            order.append(k)
            seen.add(organ)
    order += [k for k in range(len(organs)) if k not in order][: max(0, columns - len(order))]
    order = order[:columns]
    picture = module.condition.picture(module.condition.encode(torch.from_numpy(masks[order])))
    rows = [picture] + [
        torch.from_numpy(x[order]).permute(0, 3, 1, 2).float() / 255 for x in (generated, real)
    ]
    image = make_grid(torch.cat(rows), nrow=len(order), padding=2, pad_value=1.0)
    save_image(image, out / "samples.png")
    (out / "samples.txt").write_text(
        "rows: mask | generated (last checkpoint, EMA) | real crop of the same mask\n"
        "columns (organ): " + ", ".join(organs[k] for k in order) + "\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--config", type=Path, default=REPO / "experiments/protocols/diffusion/cpu.yaml"
    )
    parser.add_argument("--runs", type=Path, default=REPO / "runs/protocols/diffusion_cpu")
    parser.add_argument("--snapshots", type=Path, nargs="+", required=True)
    parser.add_argument("--split", type=Path, default=REPO / "experiments/splits/main.json")
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared/data/monuseg/train")
    parser.add_argument("--out", type=Path, default=REPO / "experiments/results/diffusion")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--per-image", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    split = json.loads(args.split.read_text())
    source = LabelMapFolder(args.data / "images", args.data / "instance_masks")
    rng = np.random.default_rng(0)
    heldout = crops(source, split["val"] + split["test"], args.size, args.per_image, rng)
    masks, real, groups, organs = heldout
    _, train_real, train_groups, _ = crops(source, split["train"], args.size, args.per_image, rng)
    result = {
        "heldout_crops": len(masks),
        "heldout_images": len(set(groups.tolist())),
        "size": args.size,
        "reference_real_train_vs_heldout": realism(real, groups, train_real, train_groups),
        "checkpoints": [],
    }
    print("real vs real:", result["reference_real_train_vs_heldout"], flush=True)
    module = build_module(args.config)
    generated = None
    cache = args.runs / "learning_cache"  # one checkpoint's samples and row, for a later run
    cache.mkdir(parents=True, exist_ok=True)
    for checkpoint in args.snapshots:
        done = cache / f"{checkpoint.stem}_{len(masks)}.npz"
        if done.is_file():
            saved = np.load(done)
            generated, row = saved["generated"], json.loads(str(saved["row"]))
        else:
            state = load(module, checkpoint)
            started = time.monotonic()
            generated = sample(module, masks, args.batch_size)
            seconds = time.monotonic() - started
            row = {
                "checkpoint": checkpoint.name,
                "step": int(state["global_step"]),
                "epoch": int(state["epoch"]) + 1,
                "sampling_seconds": round(seconds, 1),
                **realism(real, groups, generated, groups),
            }
            np.savez(done, generated=generated, row=json.dumps(row))
        result["checkpoints"].append(row)
        print(row, flush=True)
    with (args.out / "realism.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(result["checkpoints"][0]))
        writer.writeheader()
        writer.writerows(result["checkpoints"])
    result["loss_points"] = len(loss_curve(args.runs, args.out))
    grid(masks, generated, real, organs, module, args.out)
    (args.out / "learning.json").write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
