"""Composition of an initial synthetic patch: ``I = A * M + B * (1 - M)`` (Hou et al. 2017, Eq. 1)."""

from __future__ import annotations

import cv2
import numpy as np
from scipy import ndimage

__all__ = ["Compositor", "nuclear_texture"]


def nuclear_texture(
    eosin: np.ndarray, nuclear_od: np.ndarray, strength: float = 0.6, smoothing: float = 0.8
) -> np.ndarray:
    """Foreground texture: Eosin-channel texture of a real patch times the nuclear colour.

    Args:
        eosin: ``float`` ``(H, W)`` E channel of a real patch (any units).
        nuclear_od: ``float`` ``(3,)`` mean optical density ``-log(rgb / 255)`` of
            sub-segmented nuclear pixels.
        strength: how strongly the texture modulates the density (0 = flat colour).
        smoothing: Gaussian sigma (pixels) applied to the texture first; pixel noise of the
            E channel otherwise shows as salt-and-pepper speckle inside nuclei.

    Returns:
        ``uint8`` ``(H, W, 3)``: ``255 * exp(-nuclear_od * t)`` with
        ``t = clip(1 + strength * zscore(eosin), 0.2, 2.0)``.
    """
    if smoothing > 0:
        eosin = cv2.GaussianBlur(eosin.astype(np.float32), (0, 0), smoothing)
    spread = eosin.std()
    z = (eosin - eosin.mean()) / spread if spread > 0 else np.zeros_like(eosin)
    factor = np.clip(1.0 + strength * z, 0.2, 2.0)[..., None]
    return np.clip(255.0 * np.exp(-nuclear_od[None, None, :] * factor), 0, 255).astype(np.uint8)


class Compositor:
    """Blend nuclei into a background with random interior clearing and blurred boundaries.

    Args:
        clear_probability: probability that a nucleus gets a cleared (lighter) interior,
            modelling chromatin clearing.
        clear_strength: range of the fraction by which M drops inside a cleared nucleus.
        clear_erosion: range of the erosion (pixels) that defines the cleared interior.
        blur_sigma: range of the Gaussian sigma (pixels) that softens every boundary.
    """

    def __init__(
        self,
        clear_probability: float = 0.3,
        clear_strength: tuple[float, float] = (0.3, 0.7),
        clear_erosion: tuple[int, int] = (2, 4),
        blur_sigma: tuple[float, float] = (0.6, 1.4),
    ) -> None:
        self.clear_probability, self.clear_strength = clear_probability, clear_strength
        self.clear_erosion, self.blur_sigma = clear_erosion, blur_sigma

    def mask_weights(self, label: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """``M`` in [0, 1], ``float32`` ``(H, W)``: 1 in nuclei, lowered in cleared interiors, blurred."""
        weights = (label > 0).astype(np.float32)
        n = int(label.max())
        cleared = np.flatnonzero(rng.random(n) < self.clear_probability) + 1
        if len(cleared):
            erosion = int(rng.integers(self.clear_erosion[0], self.clear_erosion[1] + 1))
            selected = np.isin(label, cleared)
            # the interior of each selected nucleus: its pixels far enough from any other id
            same = ndimage.grey_erosion(label, size=2 * erosion + 1) == ndimage.grey_dilation(
                label, size=2 * erosion + 1
            )
            interior = selected & same
            weights[interior] *= 1.0 - rng.uniform(*self.clear_strength)
        sigma = rng.uniform(*self.blur_sigma)
        return cv2.GaussianBlur(weights, (0, 0), sigma)

    def __call__(
        self,
        foreground: np.ndarray,
        background: np.ndarray,
        label: np.ndarray,
        rng: np.random.Generator,
    ) -> np.ndarray:
        """``uint8`` ``(H, W, 3)`` patch from texture ``A``, background ``B`` and the label map."""
        m = self.mask_weights(label, rng)[..., None]
        image = foreground.astype(np.float32) * m + background.astype(np.float32) * (1.0 - m)
        return np.clip(image + 0.5, 0, 255).astype(np.uint8)
