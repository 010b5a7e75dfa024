"""From network probabilities to instance label maps: the one post-processing of every module.

Channel conventions of the ``(C, H, W)`` probability input (values in [0, 1]):

- ``C == 3``: background / interior / boundary (softmax output, or a one-hot mask
  decoded by :class:`~histo_gan.training.mask_encoding.MaskEncoding`);
- ``C == 2``: foreground / boundary (two independent sigmoid outputs);
- ``C == 1``: foreground only.

Steps: foreground = ``P(foreground) > foreground_threshold`` (for ``C == 3``, P(foreground) =
interior + boundary); markers = connected components of foreground pixels whose boundary
probability is below ``boundary_threshold`` (C >= 2) or, for ``C == 1``, of the foreground
after an erosion by ``marker_erosion`` pixels; markers smaller than ``min_marker_area`` are
dropped; then either marker-controlled watershed of the foreground (on the boundary
probability, or on the negative distance transform for ``C == 1``) or, with
``watershed=False``, plain connected components of the markers grown back by nothing; then
objects smaller than ``min_area`` pixels are removed and holes inside each object are filled.
Ids of the result are ``1..N`` in raster order of first appearance.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage
from skimage.segmentation import relabel_sequential, watershed

__all__ = ["InstancePostprocessor"]

_FOUR_CONNECTED = ndimage.generate_binary_structure(2, 1)


class InstancePostprocessor:
    """Probabilities ``(C, H, W)`` -> ``int32`` instance label map ``(H, W)``.

    Args:
        foreground_threshold: foreground if P(foreground) exceeds this.
        boundary_threshold: marker pixels have P(boundary) below this (C >= 2).
        watershed: grow markers over the foreground by marker-controlled watershed; when
            ``False`` the instances are the connected components of the markers alone
            (boundary pixels stay background).
        marker_erosion: erosion (pixels) of the foreground that makes markers when there is
            no boundary channel (C == 1); 0 makes the connected components the instances.
        min_marker_area: markers smaller than this are dropped (their pixels still join a
            neighbour through the watershed).
        min_area: objects smaller than this are removed.
        fill_holes: fill holes inside each object.
    """

    def __init__(
        self,
        foreground_threshold: float = 0.5,
        boundary_threshold: float = 0.5,
        watershed: bool = True,
        marker_erosion: int = 2,
        min_marker_area: int = 4,
        min_area: int = 10,
        fill_holes: bool = True,
    ) -> None:
        self.foreground_threshold = foreground_threshold
        self.boundary_threshold = boundary_threshold
        self.watershed = watershed
        self.marker_erosion = marker_erosion
        self.min_marker_area = min_marker_area
        self.min_area = min_area
        self.fill_holes = fill_holes

    def __call__(self, probabilities) -> np.ndarray:
        if isinstance(probabilities, torch.Tensor):
            probabilities = probabilities.detach().float().cpu().numpy()
        probabilities = np.asarray(probabilities, dtype=np.float32)
        if probabilities.ndim != 3 or probabilities.shape[0] not in (1, 2, 3):
            raise ValueError(
                f"probabilities must have shape (C, H, W) with C in 1..3, got {probabilities.shape}"
            )
        channels = probabilities.shape[0]
        if channels == 3:
            foreground_p = probabilities[1] + probabilities[2]
            boundary_p = probabilities[2]
        elif channels == 2:
            foreground_p, boundary_p = probabilities[0], probabilities[1]
        else:
            foreground_p, boundary_p = probabilities[0], None
        foreground = foreground_p > self.foreground_threshold

        if boundary_p is not None:
            seeds = foreground & (boundary_p < self.boundary_threshold)
            relief = boundary_p
        else:
            seeds = foreground
            if self.marker_erosion > 0:
                seeds = ndimage.binary_erosion(foreground, iterations=self.marker_erosion)
            relief = -ndimage.distance_transform_edt(foreground)
        markers, _ = ndimage.label(seeds, structure=_FOUR_CONNECTED)
        markers = _remove_small(markers, self.min_marker_area)

        if self.watershed:
            instances = watershed(relief, markers, mask=foreground)
        else:
            instances = markers
        instances = _remove_small(instances, self.min_area)
        if self.fill_holes:
            instances = _fill_holes(instances)
        return relabel_sequential(instances)[0].astype(np.int32)


def _remove_small(label: np.ndarray, min_area: int) -> np.ndarray:
    if min_area <= 1 or label.max() == 0:
        return label
    areas = np.bincount(label.ravel())
    small = areas < min_area
    small[0] = False
    label = label.copy()
    label[small[label]] = 0
    return label


def _fill_holes(label: np.ndarray) -> np.ndarray:
    """Fill background holes enclosed by a single object, object by object (in its box)."""
    filled = label.copy()
    for index, box in enumerate(ndimage.find_objects(label), start=1):
        if box is None:
            continue
        region = label[box] == index
        holes = ndimage.binary_fill_holes(region) & ~region & (label[box] == 0)
        if holes.any():
            filled[box][holes] = index
    return filled
