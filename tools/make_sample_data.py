"""Rebuild the sample bundled in ``histo_gan/sample_data`` from the MoNuSeg training set.

Usage: python tools/make_sample_data.py [--monuseg ../shared/data/monuseg/train]

Takes one 256x256 crop from each listed image (the window with the most whole nuclei on a
32-px grid), with the label map rasterised from the image's Aperio XML annotation.
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import cv2
import numpy as np
from skimage.segmentation import relabel_sequential

from histo_gan.data.readers import rasterize_polygons, read_aperio_xml, read_image

CROPS = {  # image stem -> organ (one per organ that has an XML annotation, two for breast)
    "TCGA-A7-A13E-01Z-00-DX1": "breast",
    "TCGA-AR-A1AS-01Z-00-DX1": "breast",
    "TCGA-B0-5698-01Z-00-DX1": "kidney",
    "TCGA-21-5784-01Z-00-DX1": "liver",
    "TCGA-CH-5767-01Z-00-DX1": "prostate",
    "TCGA-NH-A8F7-01A-01-TS1": "colon",
}
SIZE = 256


def best_window(label: np.ndarray, size: int, step: int = 32) -> tuple[int, int]:
    best, best_yx = -1, (0, 0)
    for y in range(0, label.shape[0] - size + 1, step):
        for x in range(0, label.shape[1] - size + 1, step):
            window = label[y : y + size, x : x + size]
            border = np.unique(np.concatenate([window[0], window[-1], window[:, 0], window[:, -1]]))
            whole = len(np.setdiff1d(np.unique(window), border))
            if whole > best:
                best, best_yx = whole, (y, x)
    return best_yx


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--monuseg", default="../shared/data/monuseg/train", type=Path)
    parser.add_argument("--out", default=Path("histo_gan/sample_data"), type=Path)
    args = parser.parse_args()
    (args.out / "images").mkdir(parents=True, exist_ok=True)
    (args.out / "labels").mkdir(parents=True, exist_ok=True)
    for stem, organ in CROPS.items():
        image = read_image(args.monuseg / "images" / f"{stem}.tif")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            polygons = read_aperio_xml(args.monuseg / "annotations" / f"{stem}.xml")
        label = rasterize_polygons(polygons, image.shape[:2])
        y, x = best_window(label, SIZE)
        crop_label, _, _ = relabel_sequential(label[y : y + SIZE, x : x + SIZE])
        name = f"{stem}_y{y}_x{x}"
        cv2.imwrite(
            str(args.out / "images" / f"{name}.png"),
            cv2.cvtColor(image[y : y + SIZE, x : x + SIZE], cv2.COLOR_RGB2BGR),
            [cv2.IMWRITE_PNG_COMPRESSION, 9],
        )
        cv2.imwrite(str(args.out / "labels" / f"{name}.png"), crop_label.astype(np.uint16))
        print(f"{name}: {organ}, {crop_label.max()} nuclei")


if __name__ == "__main__":
    main()
