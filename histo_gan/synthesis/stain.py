"""Colour deconvolution and the threshold segmentations of the initial synthesis.

Hou et al. (2017, §2.1-2.2; 2019, §4.1) threshold the haematoxylin (H) channel of a colour
deconvolution at a percentile chosen from the patch's mean H. Their tables are in the units of
scikit-image's ``rgb2hed`` before version 0.19, which computed ``-log(rgb + 2)`` (``rgb`` in
[0, 1]) before the stain matrix; :func:`legacy_hed` reproduces that convention so the tables
apply unchanged (mean H of MoNuSeg images: about -1.25 to -1.10, the tables' range). Nuclear
pixels have the *largest* H values, so "p % nuclear pixels" keeps the top p % of H.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage
from skimage.color import hed_from_rgb
from skimage.filters import threshold_otsu

__all__ = [
    "MEAN_H_BINS",
    "SUB_SEGMENTATION_PERCENT",
    "SUPER_SEGMENTATION_PERCENT",
    "OtsuThreshold",
    "PercentileThreshold",
    "Thresholder",
    "legacy_hed",
]

# Upper edges of the mean-H bins (-inf, -1.25), [-1.25, -1.20), ..., [-1.10, inf).
MEAN_H_BINS = (-1.25, -1.20, -1.15, -1.10)
SUPER_SEGMENTATION_PERCENT = (15.0, 20.0, 25.0, 30.0, 35.0)  # hou2017 §2.1
SUB_SEGMENTATION_PERCENT = (10.0, 16.0, 21.0, 27.0, 32.0)  # hou2017 §2.2


def legacy_hed(rgb: np.ndarray) -> np.ndarray:
    """``uint8`` RGB ``(H, W, 3)`` -> ``float32`` HED ``(H, W, 3)`` in the pre-0.19 scikit-image units."""
    optical = -np.log(rgb.astype(np.float32) / 255.0 + 2.0)
    return (optical.reshape(-1, 3) @ hed_from_rgb.astype(np.float32)).reshape(rgb.shape)


class Thresholder:
    """Interface: H channel ``float (H, W)`` -> nuclear mask ``bool (H, W)``."""

    def __call__(self, h: np.ndarray) -> np.ndarray:
        raise NotImplementedError


def _clean(mask: np.ndarray, smoothing_sigma: float, dilation: int) -> np.ndarray:
    """Gaussian smoothing of the binary mask (removes specks), then optional dilation."""
    if smoothing_sigma > 0:
        mask = ndimage.gaussian_filter(mask.astype(np.float32), smoothing_sigma) > 0.5
    if dilation > 0:
        mask = ndimage.binary_dilation(mask, iterations=dilation)
    return mask


class PercentileThreshold(Thresholder):
    """Keep the top ``p`` % of H, with ``p`` looked up from the mean H (Hou et al. 2017).

    Args:
        percents: ``p`` for each mean-H bin of :data:`MEAN_H_BINS` (five values). Use
            :data:`SUPER_SEGMENTATION_PERCENT` (default) to cover whole nuclei, or
            :data:`SUB_SEGMENTATION_PERCENT` to stay inside them.
        bins: upper bin edges of the mean H (four values, ascending).
        smoothing_sigma: Gaussian sigma (pixels) of the smoothing that removes specks.
        dilation: extra dilation (pixels); super-segmentation uses it to contain nuclei fully.
    """

    def __init__(
        self,
        percents: Sequence[float] = SUPER_SEGMENTATION_PERCENT,
        bins: Sequence[float] = MEAN_H_BINS,
        smoothing_sigma: float = 1.0,
        dilation: int = 1,
    ) -> None:
        if len(percents) != len(bins) + 1:
            raise ValueError(f"need {len(bins) + 1} percents for {len(bins)} bin edges")
        if list(bins) != sorted(bins):
            raise ValueError(f"bin edges must ascend, got {bins}")
        self.percents, self.bins = tuple(percents), tuple(bins)
        self.smoothing_sigma, self.dilation = smoothing_sigma, dilation

    def percent_for(self, mean_h: float) -> float:
        return self.percents[int(np.searchsorted(self.bins, mean_h, side="right"))]

    def __call__(self, h: np.ndarray) -> np.ndarray:
        threshold = np.percentile(h, 100.0 - self.percent_for(float(h.mean())))
        return _clean(h > threshold, self.smoothing_sigma, self.dilation)


class OtsuThreshold(Thresholder):
    """Otsu's threshold of H (Hou et al. 2019), shifted by ``offset`` (negative: more pixels)."""

    def __init__(
        self, offset: float = 0.0, smoothing_sigma: float = 1.0, dilation: int = 1
    ) -> None:
        self.offset, self.smoothing_sigma, self.dilation = offset, smoothing_sigma, dilation

    def __call__(self, h: np.ndarray) -> np.ndarray:
        threshold = threshold_otsu(h) + self.offset
        return _clean(h > threshold, self.smoothing_sigma, self.dilation)
