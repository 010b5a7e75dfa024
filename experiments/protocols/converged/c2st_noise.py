"""How much the classifier two-sample test moves when nothing it measures changes.

    python experiments/protocols/converged/c2st_noise.py \
        --real ../shared/data/monuseg/train/images --synthetic runs/protocols/synthetic/hou/images \
        [--crops 256] [--patch-size 48] [--repeats 1] [--seeds 10] \
        --out experiments/results/hou_refiners/c2st_noise_r1.json

One fixed draw of ``--crops`` random ``--patch-size`` crops of each folder's images (crops
taken round-robin over the images, positions from seed 0), then the RealismMonitor's test
(:func:`histo_gan.realism.classifier_two_sample_test`, every crop its own unit) once per
critic seed. The sample standard deviation of those accuracies is the noise a curve of that
test carries between evaluations of an unchanged generator: pass it to ``gan_curve.py
--noise-sd``. Writes the accuracies, their mean and sd as JSON and prints one line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from tqdm import tqdm  # noqa: E402

from histo_gan.realism import classifier_two_sample_test, load_images  # noqa: E402


def fixed_crops(images: list[np.ndarray], count: int, size: int, seed: int = 0) -> np.ndarray:
    """``count`` crops ``(count, size, size, 3)`` ``uint8``, round-robin over ``images``."""
    rng = np.random.default_rng(seed)
    crops = []
    for k in range(count):
        image = images[k % len(images)]
        if image.shape[0] < size or image.shape[1] < size:
            raise ValueError(f"image {k % len(images)} is smaller than {size} px: {image.shape}")
        y = rng.integers(0, image.shape[0] - size + 1)
        x = rng.integers(0, image.shape[1] - size + 1)
        crops.append(image[y : y + size, x : x + size, :3])
    return np.stack(crops).astype(np.uint8)


def measure(real: np.ndarray, synthetic: np.ndarray, seeds: int, repeats: int) -> dict:
    """The test's accuracy under critic seeds ``0..seeds-1``, with their mean and sample sd."""
    if seeds < 2:
        raise ValueError(f"a standard deviation needs at least 2 seeds, got {seeds}")
    accuracies = [
        classifier_two_sample_test(real, synthetic, seed=seed, repeats=repeats)["accuracy"]
        for seed in tqdm(range(seeds), desc="critic seeds")
    ]
    return {
        "accuracies": accuracies,
        "mean": float(np.mean(accuracies)),
        "sd": float(np.std(accuracies, ddof=1)),
        "repeats": repeats,
        "n_crops": len(real),
        "patch_size": int(real.shape[1]),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--real", type=Path, required=True)
    parser.add_argument("--synthetic", type=Path, required=True)
    parser.add_argument("--crops", type=int, default=256)
    parser.add_argument("--patch-size", type=int, default=48)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    real = fixed_crops(load_images(args.real), args.crops, args.patch_size)
    synthetic = fixed_crops(load_images(args.synthetic), args.crops, args.patch_size)
    record = measure(real, synthetic, args.seeds, args.repeats)
    record.update(real=str(args.real), synthetic=str(args.synthetic))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1) + "\n")
    print(
        f"C2ST over {args.seeds} critic seeds ({args.repeats} repeat(s), {args.crops} crops "
        f"of {args.patch_size} px a side): mean {record['mean']:.4f}, sd {record['sd']:.4f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
