"""Sample grid of a chained DAFF-GAN synthesis: centroids | G1 mask | G2 H&E, one row per sample.

    python experiments/daff_grid.py CENTROIDS MASKS IMAGES --out grid.png [--rows 8]

CENTROIDS is the ``histo-gan synthesize --method centroids`` dataset, MASKS stage 1's export
(G1's instances), IMAGES stage 2's export (G2's H&E). Samples are chained through the source
ids that :class:`~histo_gan.callbacks.SyntheticExport` records. The H&E column is drawn plain and
with the outlines of its label map. Exits with an error when an exported label map is not
exactly the mask it was conditioned on.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from histo_gan.data.synthetic import SyntheticDataset
from histo_gan.synthesis.grid import outline


def chain(centroids: Path, masks: Path, images: Path) -> list[tuple]:
    """``(centroid sample, mask sample, image sample)`` per sample of ``images``; raises
    ``ValueError`` when an image's label map differs from its mask's."""
    by_id = [{s.image_id: s for s in SyntheticDataset(root)} for root in (centroids, masks)]
    rows = []
    for image in SyntheticDataset(images):
        mask = by_id[1][image.meta["source_ids"][0]]
        if not np.array_equal(image.label, mask.label):
            raise ValueError(f"{image.image_id}: label map differs from its mask {mask.image_id}")
        rows.append((by_id[0][mask.meta["source_ids"][0]], mask, image))
    return rows


def grid(rows: list[tuple], gap: int = 4) -> np.ndarray:
    """uint8 RGB: per row centroids | mask | H&E | H&E with outlines, white gaps."""
    size = rows[0][2].image.shape[0]
    out = np.full((len(rows) * (size + gap) + gap, 4 * (size + gap) + gap, 3), 255, np.uint8)
    for r, (centroid, mask, image) in enumerate(rows):
        tiles = [centroid.image, mask.image, image.image, outline(image.image, image.label)]
        for c, tile in enumerate(tiles):
            y, x = gap + r * (size + gap), gap + c * (size + gap)
            out[y : y + size, x : x + size] = tile
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("centroids", type=Path)
    parser.add_argument("masks", type=Path)
    parser.add_argument("images", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--rows", type=int, default=8)
    args = parser.parse_args(argv)
    try:
        rows = chain(args.centroids, args.masks, args.images)
    except (ValueError, KeyError) as error:
        print(f"daff_grid: {error}", file=sys.stderr)
        return 1
    Image.fromarray(grid(rows[: args.rows])).save(args.out)
    print(f"daff_grid: {len(rows)} chained samples, exact label maps; grid: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
