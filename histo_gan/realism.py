"""Realism of synthetic H&E images, measured against real ones without a pretrained network.

    histo-gan realism --synthetic data/syn_hou --real ../shared/data/monuseg/train/images \\
                      [--out realism.json] [--patch-size 32] [--patches 1024] [--seed 0]

Two measures, both on random square patches (``uint8`` ``(N, S, S, 3)`` arrays, so GAN
modules can call them on their own samples):

- **Classifier two-sample test** (:func:`classifier_two_sample_test`): a small CNN learns to
  tell real from synthetic patches on one half of the images and is scored on the other half
  (halves by whole image, so it cannot win by recognising an image it trained on). Accuracy
  0.5 means indistinguishable; the exact (Clopper-Pearson) binomial interval and the one-sided
  binomial p-value against 0.5 come with it.
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
    from histo_gan.data import ImageFolder, SyntheticFolder

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


def _critic() -> nn.Module:
    """A small CNN, ``(B, 3, S, S)`` in [0, 1] -> one logit. No BatchNorm, so that batch
    composition cannot leak the label."""
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, stride=2, padding=1), nn.LeakyReLU(0.2),
        nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.LeakyReLU(0.2),
        nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.LeakyReLU(0.2),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 1),
    )  # fmt: skip


def _halves(groups: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """True for patches in the first half: whole groups, shuffled, alternating."""
    order = rng.permutation(np.unique(groups))
    first = set(order[::2].tolist())
    return np.array([g in first for g in groups.tolist()])


def _tensor(patches: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(patches).permute(0, 3, 1, 2).float() / 255.0


def classifier_two_sample_test(
    real: np.ndarray,
    synthetic: np.ndarray,
    real_groups: np.ndarray | None = None,
    synthetic_groups: np.ndarray | None = None,
    seed: int = 0,
    epochs: int = 10,
    batch_size: int = 32,
    lr: float = 2e-3,
    level: float = 0.95,
) -> dict:
    """Accuracy of a CNN that tells real from synthetic patches on held-out images.

    Args:
        real, synthetic: ``uint8`` ``(N, S, S, 3)`` patches. The larger set is subsampled to
            the size of the smaller, so chance is exactly 0.5.
        real_groups, synthetic_groups: ``(N,)`` image index of each patch; the train/test
            halves are split by group (``None``: every patch is its own group).
        seed: seeds the subsampling, halves, initialisation and batches (fixed result on CPU).
        epochs, batch_size, lr: Adam training of the critic on the first half.
        level: confidence level of the binomial interval.

    Returns:
        ``{"accuracy", "ci_low", "ci_high", "p_value", "n_train", "n_test"}``; ``p_value`` is
        the one-sided exact binomial test of accuracy > 0.5.
    """
    if real.ndim != 4 or synthetic.ndim != 4 or real.shape[1:] != synthetic.shape[1:]:
        raise ValueError(
            f"patches must be (N, S, S, 3) of one size, got {real.shape} and {synthetic.shape}"
        )
    rng = np.random.default_rng(seed)
    n = min(len(real), len(synthetic))
    picks = []
    for patches, groups in ((real, real_groups), (synthetic, synthetic_groups)):
        keep = np.sort(rng.choice(len(patches), n, replace=False))
        groups = np.arange(len(patches)) if groups is None else np.asarray(groups)
        picks.append((patches[keep], _halves(groups[keep], rng)))
    # The test half keeps as many patches of each class, so that chance stays 0.5.
    n_test = min(int((~first).sum()) for _, first in picks)
    if n_test == 0 or any(first.all() or not first.any() for _, first in picks):
        raise ValueError("need at least two images (groups) per class to hold one half out")
    for k, (patches, first) in enumerate(picks):
        held_out = np.flatnonzero(~first)
        drop = rng.choice(held_out, len(held_out) - n_test, replace=False)
        used = np.ones(len(patches), bool)
        used[drop] = False
        picks[k] = (patches[used], first[used])
    x = np.concatenate([picks[0][0], picks[1][0]])
    y = np.concatenate(
        [np.zeros(len(picks[0][0]), np.float32), np.ones(len(picks[1][0]), np.float32)]
    )
    train = np.concatenate([picks[0][1], picks[1][1]])

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        critic = _critic()
        optimizer = torch.optim.Adam(critic.parameters(), lr=lr)
        x_train, y_train = _tensor(x[train]), torch.from_numpy(y[train])
        for _ in range(epochs):
            order = torch.from_numpy(rng.permutation(len(x_train)))
            for start in range(0, len(order), batch_size):
                batch = order[start : start + batch_size]
                images = x_train[batch]
                # flips and 90-degree turns: orientation carries no information in H&E
                images = torch.rot90(images, int(rng.integers(4)), dims=(2, 3))
                if rng.random() < 0.5:
                    images = images.flip(3)
                loss = nn.functional.binary_cross_entropy_with_logits(
                    critic(images)[:, 0], y_train[batch]
                )
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        with torch.no_grad():
            x_test = _tensor(x[~train])
            logits = torch.cat(
                [critic(x_test[k : k + 256])[:, 0] for k in range(0, len(x_test), 256)]
            )
    correct = int(((logits.numpy() > 0) == (y[~train] > 0.5)).sum())
    total = int((~train).sum())
    test = stats.binomtest(correct, total, 0.5, alternative="greater")
    interval = stats.binomtest(correct, total).proportion_ci(confidence_level=level, method="exact")
    return {
        "accuracy": correct / total,
        "ci_low": float(interval.low),
        "ci_high": float(interval.high),
        "p_value": float(test.pvalue),
        "n_train": int(train.sum()),
        "n_test": total,
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
    patch_size: int = 32,
    patches: int = 1024,
    seed: int = 0,
    epochs: int = 20,
) -> dict:
    """Both measures on ``patches`` random patches of each image list (``uint8`` ``(H, W, 3)``)."""
    rng = np.random.default_rng(seed)
    real, real_groups = random_patches(real_images, patch_size, patches, rng)
    synthetic, synthetic_groups = random_patches(synthetic_images, patch_size, patches, rng)
    return {
        "c2st": classifier_two_sample_test(
            real, synthetic, real_groups, synthetic_groups, seed=seed, epochs=epochs
        ),
        "stain": stain_distance(real, synthetic, seed=seed),
        "settings": {"patch_size": patch_size, "patches": patches, "seed": seed, "epochs": epochs,
                     "real_images": len(real_images), "synthetic_images": len(synthetic_images)},
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="histo-gan realism", description="How far synthetic H&E patches are from real ones."
    )
    parser.add_argument("--synthetic", type=Path, required=True, help="synthetic dataset or images")
    parser.add_argument("--real", type=Path, required=True, help="folder of real images")
    parser.add_argument("--out", type=Path, default=None, help="JSON file (default: print only)")
    parser.add_argument("--patch-size", type=int, default=32)
    parser.add_argument("--patches", type=int, default=1024, help="patches per side")
    parser.add_argument("--epochs", type=int, default=20, help="epochs of the critic")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    result = realism(load_images(args.real), load_images(args.synthetic),
                     args.patch_size, args.patches, args.seed, args.epochs)  # fmt: skip
    result["settings"].update(real=str(args.real), synthetic=str(args.synthetic))
    c2st, stain = result["c2st"], result["stain"]
    print(f"{'measure':34s} value")
    print(f"{'C2ST accuracy (0.5 = real-like)':34s} {c2st['accuracy']:.3f} "
          f"[{c2st['ci_low']:.3f}, {c2st['ci_high']:.3f}] n={c2st['n_test']} p={c2st['p_value']:.2g}")  # fmt: skip
    print(f"{'W1 haematoxylin OD':34s} {stain['w1_h']:.4f}")
    print(f"{'W1 eosin OD':34s} {stain['w1_e']:.4f}")
    print(f"{'Frechet (mean/sd of H, E per patch)':34s} {stain['frechet']:.3g}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2))
        print(f"wrote {args.out}")
    return 0
