"""Realism of synthetic H&E images, measured against real ones without a pretrained network.

    histo-gan realism --synthetic data/syn_hou --real ../shared/data/monuseg/train/images \\
                      [--out realism.json] [--patch-size 48] [--patches 1024] [--repeats 2]

Two measures, both on random square patches (``uint8`` ``(N, S, S, 3)`` arrays, so GAN
modules can call them on their own samples):

- **Classifier two-sample test** (:func:`classifier_two_sample_test`): small CNNs learn to
  tell real from synthetic patches on one half of the images and are scored on the other half
  (halves by whole image, so a critic cannot win by recognising an image it trained on;
  repeated over random halves, cross-fitted). Accuracy 0.5 means indistinguishable; it is
  averaged per image, with a bootstrap interval over images, the independent units.
- **Stain distance** (:func:`stain_distance`): colour deconvolution into haematoxylin and eosin
  optical densities (``skimage.color.rgb2hed``, Ruifrok & Johnston), then (a) the 1-D
  Wasserstein-1 distance between the real and synthetic pixel distributions of H and of E,
  and (b) the Fréchet distance between Gaussians fitted to per-patch stain statistics
  ``(mean H, mean E, sd H, sd E)``, the FID formula on a 4-d hand-made feature.

Either folder may be a synthetic dataset (``dataset.json`` present: read with
:class:`~histo_gan.data.SyntheticFolder`) or a folder of images (:class:`~histo_gan.data.ImageFolder`).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from scipy import linalg, stats
from torch import nn

from histo_gan.data.sources import ImageFolder, SyntheticFolder

__all__ = [
    "classifier_two_sample_test",
    "load_images",
    "main",
    "random_patches",
    "stain_distance",
    "stain_features",
]


def load_images(folder: str | Path) -> list[np.ndarray]:
    """Every image of a folder as ``uint8`` ``(H, W, 3)``: a synthetic dataset or plain images."""
    folder = Path(folder)
    source = SyntheticFolder(folder) if (folder / "dataset.json").is_file() else ImageFolder(folder)
    return [source.load(i).image for i in range(len(source))]


def random_patches(
    images: Sequence[np.ndarray], size: int, n: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` random ``size``-px crops spread evenly over ``images`` (image ``k % len``).

    Returns:
        patches ``uint8`` ``(n, size, size, 3)`` and ``groups`` ``int64`` ``(n,)``, the index
        of each patch's image.
    """
    small = [k for k, image in enumerate(images) if min(image.shape[:2]) < size]
    if small:
        raise ValueError(f"images {small[:5]} are smaller than the patch size {size}")
    groups = np.arange(n) % len(images)
    patches = np.empty((n, size, size, 3), np.uint8)
    for k, g in enumerate(groups):
        h, w = images[g].shape[:2]
        y, x = rng.integers(0, h - size + 1), rng.integers(0, w - size + 1)
        patches[k] = images[g][y : y + size, x : x + size, :3]
    return patches, groups


# --- classifier two-sample test ---------------------------------------------------------


def _critic(width: int = 32) -> nn.Module:
    """A small CNN, ``(B, 3, S, S)`` in [0, 1] -> one logit: four stride-2 convolutions with
    BatchNorm, then global average pooling. BatchNorm made the critic train several times
    faster than GroupNorm or no normalisation here; it cannot leak the label at test time
    because patches are scored in eval mode (running statistics), each on its own."""
    layers: list[nn.Module] = []
    channels = 3
    for out in (width // 2, width, 2 * width, 2 * width):
        layers += [
            nn.Conv2d(channels, out, 3, stride=2, padding=1),
            nn.BatchNorm2d(out),
            nn.LeakyReLU(0.2),
        ]
        channels = out
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, 1))


def _tensor(patches: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(patches).permute(0, 3, 1, 2).float() / 255.0


def _augment(images: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Flips and 90-degree turns only: orientation carries no information in H&E, while
    colour and blur are exactly what the critic must see."""
    images = torch.rot90(images, int(rng.integers(4)), dims=(2, 3))
    return images.flip(3) if rng.random() < 0.5 else images


def _train_and_score(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    rng: np.random.Generator,
    epochs: int,
    batch_size: int,
    lr: float,
    width: int,
) -> np.ndarray:
    """Train a fresh critic on ``(x_train, y_train)``; return the test logits ``(N_test,)``.

    The two classes are weighted to equal total weight; AdamW with a cosine learning rate.
    """
    critic = _critic(width)
    steps = epochs * -(-len(x_train) // batch_size)
    optimizer = torch.optim.AdamW(critic.parameters(), lr=lr, weight_decay=1e-2)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, lr, total_steps=steps)
    images, labels = _tensor(x_train), torch.from_numpy(y_train)
    share = labels.mean()
    weights = torch.where(labels > 0.5, 0.5 / share, 0.5 / (1 - share))
    critic.train()
    for _ in range(epochs):
        order = torch.from_numpy(rng.permutation(len(images)))
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            loss = nn.functional.binary_cross_entropy_with_logits(
                critic(_augment(images[batch], rng))[:, 0], labels[batch], weights[batch]
            )
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
    critic.eval()
    with torch.no_grad():
        test = _tensor(x_test)
        return torch.cat(
            [critic(test[k : k + 256])[:, 0] for k in range(0, len(test), 256)]
        ).numpy()


def _bootstrap_ci(
    real: np.ndarray, synthetic: np.ndarray, rng: np.random.Generator, level: float, n: int
) -> tuple[float, float]:
    """Percentile interval of ``(mean(real) + mean(synthetic)) / 2`` resampling images within
    each side (a stratified bootstrap over images)."""
    a = real[rng.integers(0, len(real), (n, len(real)))].mean(1)
    b = synthetic[rng.integers(0, len(synthetic), (n, len(synthetic)))].mean(1)
    low, high = np.quantile((a + b) / 2, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)


def classifier_two_sample_test(
    real: np.ndarray,
    synthetic: np.ndarray,
    real_groups: np.ndarray | None = None,
    synthetic_groups: np.ndarray | None = None,
    seed: int = 0,
    repeats: int = 2,
    epochs: int = 15,
    batch_size: int = 64,
    lr: float = 2e-3,
    width: int = 32,
    level: float = 0.95,
    bootstrap: int = 2000,
) -> dict:
    """Held-out accuracy of CNNs that tell real from synthetic patches, per image.

    Images (groups), not patches, are the independent units: patches of one image share its
    stain and tissue, so a CNN can win by recognising an image. Each repeat splits the images
    of each side into two random halves and cross-fits (a critic trained on one half scores
    the other, and vice versa), so every patch gets one held-out score per repeat. A patch's
    accuracy is averaged over repeats, an image's over its patches, and the reported accuracy
    is the mean over real images and over synthetic images, averaged (0.5 = chance, whatever
    the numbers of images). The interval is a stratified bootstrap over images; it treats
    images as independent although the critics that scored them are shared, so read it as
    approximate.

    Args:
        real, synthetic: ``uint8`` ``(N, S, S, 3)`` patches of one size.
        real_groups, synthetic_groups: ``(N,)`` image index of each patch (``None``: every
            patch is its own image). Each side needs at least two images.
        seed: seeds the halves, initialisation, batches and bootstrap (fixed result on CPU).
        repeats: random splits into halves; each trains two critics.
        epochs, batch_size, lr, width: training of each critic (AdamW, one-cycle schedule)
            and its channel width.
        level, bootstrap: confidence level and resamples of the interval.

    Returns:
        ``accuracy``, ``ci_low``, ``ci_high``; ``repeat_accuracies`` (one per repeat, the
        same image-balanced accuracy); ``real_image_accuracy``, ``synthetic_image_accuracy``
        (per image, in group order); ``n_real_images``, ``n_synthetic_images``,
        ``n_patches`` (per side).
    """
    if real.ndim != 4 or synthetic.ndim != 4 or real.shape[1:] != synthetic.shape[1:]:
        raise ValueError(
            f"patches must be (N, S, S, 3) of one size, got {real.shape} and {synthetic.shape}"
        )
    sides = []
    for patches, groups in ((real, real_groups), (synthetic, synthetic_groups)):
        groups = np.arange(len(patches)) if groups is None else np.asarray(groups)
        names, index = np.unique(groups, return_inverse=True)
        if len(names) < 2:
            raise ValueError("need at least two images (groups) per side to hold one half out")
        sides.append(index)
    x = np.concatenate([real, synthetic])
    y = np.concatenate([np.zeros(len(real), np.float32), np.ones(len(synthetic), np.float32)])
    rng = np.random.default_rng(seed)
    correct = np.zeros((repeats, len(x)))
    # callable from a validation hook, where Lightning turns autograd off
    with torch.random.fork_rng(devices=[]), torch.inference_mode(False), torch.enable_grad():
        torch.manual_seed(seed)
        for r in range(repeats):
            fold = np.concatenate(
                [(rng.permutation(index.max() + 1) % 2)[index] for index in sides]
            )
            for k in (0, 1):
                train, test = fold != k, fold == k
                logits = _train_and_score(
                    x[train], y[train], x[test], rng, epochs, batch_size, lr, width
                )
                correct[r, test] = (logits > 0) == (y[test] > 0.5)
    per_image = []
    offset = 0
    for index in sides:
        hits = correct[:, offset : offset + len(index)]
        offset += len(index)
        count = np.bincount(index)
        per_image.append(np.stack([np.bincount(index, h) / count for h in hits]))  # (R, G)
    repeat_accuracies = (per_image[0].mean(1) + per_image[1].mean(1)) / 2
    real_images, synthetic_images = (p.mean(0) for p in per_image)
    low, high = _bootstrap_ci(real_images, synthetic_images, rng, level, bootstrap)
    return {
        "accuracy": float((real_images.mean() + synthetic_images.mean()) / 2),
        "ci_low": low,
        "ci_high": high,
        "repeat_accuracies": repeat_accuracies.tolist(),
        "real_image_accuracy": real_images.tolist(),
        "synthetic_image_accuracy": synthetic_images.tolist(),
        "n_real_images": len(real_images),
        "n_synthetic_images": len(synthetic_images),
        "n_patches": [len(real), len(synthetic)],
    }


# --- stain statistics -------------------------------------------------------------------


def _hed(patches: np.ndarray) -> np.ndarray:
    """``uint8`` ``(N, S, S, 3)`` -> haematoxylin and eosin optical densities ``(N, S, S, 2)``."""
    from skimage.color import rgb2hed

    return np.stack([rgb2hed(p)[..., :2] for p in patches]).astype(np.float32)


def stain_features(patches: np.ndarray) -> np.ndarray:
    """Per-patch ``(mean H, mean E, sd H, sd E)`` of the optical densities, ``float64`` ``(N, 4)``."""
    hed = _hed(patches).astype(np.float64)
    return np.concatenate([hed.mean(axis=(1, 2)), hed.std(axis=(1, 2))], axis=1)


def _frechet(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to the rows of ``a`` and ``b``."""
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = linalg.sqrtm(cov_a @ cov_b).real
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a + cov_b - 2 * root))


def stain_distance(
    real: np.ndarray, synthetic: np.ndarray, max_pixels: int = 200_000, seed: int = 0
) -> dict:
    """Distances between the H&E stain statistics of two patch sets (``uint8`` ``(N, S, S, 3)``).

    Returns:
        ``w1_h``, ``w1_e``: Wasserstein-1 distance between pixel optical densities of H and E
        (at most ``max_pixels`` pixels drawn from each set); ``frechet``: Fréchet distance of
        the per-patch ``(mean H, mean E, sd H, sd E)`` Gaussians; ``real_features``,
        ``synthetic_features``: those four statistics averaged over patches.
    """
    rng = np.random.default_rng(seed)
    result: dict = {}
    hed = []
    for patches in (real, synthetic):
        pixels = _hed(patches).reshape(-1, 2)
        if len(pixels) > max_pixels:
            pixels = pixels[rng.choice(len(pixels), max_pixels, replace=False)]
        hed.append(pixels)
    for k, stain in enumerate(("h", "e")):
        result[f"w1_{stain}"] = float(stats.wasserstein_distance(hed[0][:, k], hed[1][:, k]))
    features = [stain_features(real), stain_features(synthetic)]
    result["frechet"] = _frechet(*features)
    names = ("mean_h", "mean_e", "sd_h", "sd_e")
    for side, f in zip(("real", "synthetic"), features):
        result[f"{side}_features"] = dict(zip(names, map(float, f.mean(0))))
    return result


def realism(
    real_images: Sequence[np.ndarray],
    synthetic_images: Sequence[np.ndarray],
    patch_size: int = 48,
    patches: int = 1024,
    seed: int = 0,
    epochs: int = 15,
    repeats: int = 2,
) -> dict:
    """Both measures on ``patches`` random patches of each image list (``uint8`` ``(H, W, 3)``)."""
    rng = np.random.default_rng(seed)
    real, real_groups = random_patches(real_images, patch_size, patches, rng)
    synthetic, synthetic_groups = random_patches(synthetic_images, patch_size, patches, rng)
    return {
        "c2st": classifier_two_sample_test(
            real, synthetic, real_groups, synthetic_groups, seed, repeats, epochs
        ),
        "stain": stain_distance(real, synthetic, seed=seed),
        "settings": {
            "patch_size": patch_size,
            "patches": patches,
            "seed": seed,
            "epochs": epochs,
            "repeats": repeats,
            "real_images": len(real_images),
            "synthetic_images": len(synthetic_images),
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="histo-gan realism", description="How far synthetic H&E patches are from real ones."
    )
    parser.add_argument("--synthetic", type=Path, required=True, help="synthetic dataset or images")
    parser.add_argument("--real", type=Path, required=True, help="folder of real images")
    parser.add_argument("--out", type=Path, default=None, help="JSON file (default: print only)")
    parser.add_argument("--patch-size", type=int, default=48)
    parser.add_argument("--patches", type=int, default=1024, help="patches per side")
    parser.add_argument("--epochs", type=int, default=15, help="epochs of each critic")
    parser.add_argument("--repeats", type=int, default=2, help="random halves (2 critics each)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    result = realism(
        load_images(args.real),
        load_images(args.synthetic),
        args.patch_size,
        args.patches,
        args.seed,
        args.epochs,
        args.repeats,
    )
    result["settings"].update(real=str(args.real), synthetic=str(args.synthetic))
    c2st, stain = result["c2st"], result["stain"]
    print(f"{'measure':34s} value")
    print(
        f"{'C2ST accuracy (0.5 = real-like)':34s} {c2st['accuracy']:.3f} "
        f"[{c2st['ci_low']:.3f}, {c2st['ci_high']:.3f}] over {c2st['n_real_images']}+{c2st['n_synthetic_images']} images"
    )
    print(f"{'W1 haematoxylin OD':34s} {stain['w1_h']:.4f}")
    print(f"{'W1 eosin OD':34s} {stain['w1_e']:.4f}")
    print(f"{'Frechet (mean/sd of H, E per patch)':34s} {stain['frechet']:.3g}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2))
        print(f"wrote {args.out}")
    return 0
