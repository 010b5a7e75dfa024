"""A picture of a synthetic dataset: samples with their nucleus outlines."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
from skimage.segmentation import find_boundaries

__all__ = ["outline", "sample_grid", "write_sample_grid"]


def outline(image: np.ndarray, label: np.ndarray, colour=(0, 255, 0)) -> np.ndarray:
    """``image`` with the inner boundary of every instance drawn in ``colour``."""
    out = image.copy()
    out[find_boundaries(label, mode="inner")] = colour
    return out


def sample_grid(
    images: Sequence[np.ndarray], labels: Sequence[np.ndarray], columns: int = 4, gap: int = 4
) -> np.ndarray:
    """Each sample twice (plain, outlined) side by side, ``columns`` pairs per row; uint8 RGB."""
    size = images[0].shape[0]
    rows = (len(images) + columns - 1) // columns
    width = columns * (2 * size + gap) + gap
    grid = np.full((rows * (size + gap) + gap, width, 3), 255, np.uint8)
    for k, (image, label) in enumerate(zip(images, labels)):
        r, c = divmod(k, columns)
        y, x = gap + r * (size + gap), gap + c * (2 * size + gap)
        grid[y : y + size, x : x + size] = image
        grid[y : y + size, x + size : x + 2 * size] = outline(image, label)
    return grid


def write_sample_grid(path: Path, images, labels, columns: int = 4) -> Path:
    """Write :func:`sample_grid` as a PNG, atomically."""
    grid = cv2.cvtColor(sample_grid(images, labels, columns), cv2.COLOR_RGB2BGR)
    ok, data = cv2.imencode(".png", grid)
    if not ok:
        raise OSError(f"{path}: could not encode the sample grid")
    # the dataset writer's clean-up removes ".tmp-" files that a killed run leaves behind
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=".tmp-", delete=False) as f:
        f.write(data.tobytes())
    os.replace(f.name, path)
    return path
