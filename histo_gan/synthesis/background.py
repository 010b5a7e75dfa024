"""Nucleus-free backgrounds: nuclear pixels replaced by inpainted tissue."""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["Inpainter", "NavierStokesInpainter", "TeleaInpainter"]


class Inpainter:
    """Interface: ``(image uint8 (H, W, 3), mask bool (H, W)) -> uint8 (H, W, 3)``."""

    def __call__(self, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class TeleaInpainter(Inpainter):
    """OpenCV's fast-marching inpainting (Telea 2004), the default; ``radius`` in pixels."""

    flag = cv2.INPAINT_TELEA

    def __init__(self, radius: int = 3) -> None:
        self.radius = radius

    def __call__(self, image, mask):
        if not mask.any():
            return image.copy()
        return cv2.inpaint(image, mask.astype(np.uint8), self.radius, self.flag)


class NavierStokesInpainter(TeleaInpainter):
    """OpenCV's Navier-Stokes inpainting."""

    flag = cv2.INPAINT_NS
