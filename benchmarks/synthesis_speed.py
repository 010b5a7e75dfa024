"""Initial synthesis speed: tile-level reuse vs the per-patch pipeline of the papers.

    python benchmarks/synthesis_speed.py [--patches 300] [--size 200] [--baseline-patches 20]

Both run on one core on the real MoNuSeg images in ../shared/data, in the same run:

- per-patch (the papers, about 1 patch/s/core): for every patch, crop a 200x200 source patch,
  colour-deconvolve, super-segment and inpaint it, sub-segment it for the nuclear colour, then
  compose a random mask;
- tile reuse (histo-gan): each 1000x1000 source image is segmented and inpainted once; patches
  are crops of the prepared tiles composed with a fresh mask.

Prints patches per second per core for both (tile preparation reported separately and also
amortised over the patches) and the ratio.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from histo_gan.data.sources import ImageFolder  # noqa: E402
from histo_gan.synthesis import InitialSynthesis, RandomPolygonMasks  # noqa: E402
from histo_gan.synthesis.compose import nuclear_texture  # noqa: E402
from histo_gan.synthesis.pipeline import prepare_tile  # noqa: E402
from histo_gan.types import LabeledImage  # noqa: E402

IMAGES = ROOT.parent / "shared" / "data" / "monuseg" / "train" / "images"


def per_patch_baseline(synthesis: InitialSynthesis, images, n: int, size: int) -> float:
    """The papers' pipeline: segment + inpaint a fresh background for every patch."""
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    for _ in range(n):
        item = images[int(rng.integers(len(images)))]
        y, x = rng.integers(0, 1000 - size, 2)
        patch = LabeledImage(item.image[y : y + size, x : x + size].copy(), None, item.image_id)
        tile = prepare_tile(
            patch, synthesis.super_segmentation, synthesis.sub_segmentation, synthesis.inpainter
        )
        label = synthesis.masks(rng, size)
        foreground = nuclear_texture(tile.eosin, tile.nuclear_od)
        synthesis.compositor(foreground, tile.background, label, rng)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--patches", type=int, default=300)
    parser.add_argument("--baseline-patches", type=int, default=20)
    parser.add_argument("--size", type=int, default=200)
    parser.add_argument("--tiles", type=int, default=6, help="source images to prepare")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    if not IMAGES.is_dir():
        sys.exit(f"{IMAGES}: MoNuSeg images not found")
    folder = ImageFolder(IMAGES)
    images = [folder.load(i) for i in range(min(args.tiles, len(folder)))]
    synthesis = InitialSynthesis(images, RandomPolygonMasks(), size=args.size, seed=0)

    start = time.perf_counter()
    synthesis.prepare()
    prepare_s = time.perf_counter() - start
    start = time.perf_counter()
    for index in range(args.patches):
        synthesis.sample(index)
    sample_s = time.perf_counter() - start
    baseline_s = per_patch_baseline(synthesis, images, args.baseline_patches, args.size)

    reuse_rate = args.patches / sample_s
    amortised_rate = args.patches / (sample_s + prepare_s)
    baseline_rate = args.baseline_patches / baseline_s
    print(f"{args.size}x{args.size} patches, one core, {len(images)} source tiles of 1000x1000")
    print(
        f"tile preparation (once):       {prepare_s:7.2f} s ({prepare_s / len(images):.2f} s per tile)"
    )
    print(f"tile reuse:                    {reuse_rate:7.1f} patches/s/core "
          f"({amortised_rate:.1f} with the preparation of {args.patches} patches included)")  # fmt: skip
    print(f"per-patch segment + inpaint:   {baseline_rate:7.1f} patches/s/core")
    print(f"speed-up: {reuse_rate / baseline_rate:.1f}x")


if __name__ == "__main__":
    main()
