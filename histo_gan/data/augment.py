"""Augmentation of an image and its instance label map together (albumentations).

Spatial transforms move image and label map identically; the label map is resampled with
nearest-neighbour interpolation so instance ids are never blended into new values. Colour
transforms (HED stain jitter, brightness/contrast/saturation) touch the image only.
"""

from __future__ import annotations

import os

import numpy as np

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
import albumentations as A  # noqa: E402
import cv2  # noqa: E402

__all__ = ["Augmentation", "HistoAugment", "NoAugment"]


class Augmentation:
    """Interface: ``(image uint8 (H, W, 3), label int32 (H, W), seed) -> (image, label)``.

    The same ``seed`` gives the same result; the output shapes equal the input shapes.
    """

    def __call__(
        self, image: np.ndarray, label: np.ndarray, seed: int
    ) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError


class NoAugment(Augmentation):
    """Identity."""

    def __call__(self, image, label, seed):
        return image, label


class HistoAugment(Augmentation):
    """Flips, 90-degree rotations, elastic deformation, HED stain jitter and colour jitter.

    Args:
        flip_p: probability of a horizontal and, independently, a vertical flip.
        rot90_p: probability of a rotation by a random multiple of 90 degrees.
        elastic_p: probability of an elastic deformation.
        elastic_alpha: scale of the elastic displacement field (albumentations units; the
            default moves pixels by about 1 px on average and at most about 4 px).
        elastic_sigma: smoothness (Gaussian sigma, pixels) of the displacement field.
        elastic_interpolation: OpenCV interpolation of the image under deformation (the label
            map always uses nearest neighbour).
        hed_p: probability of HED stain jitter (albumentations ``HEStain``).
        hed_scale: range of the per-stain intensity scale.
        hed_shift: range of the per-stain intensity shift.
        color_p: probability of brightness/contrast/saturation/hue jitter.
        brightness, contrast, saturation, hue: jitter ranges as in ``ColorJitter``.
    """

    def __init__(
        self,
        flip_p: float = 0.5,
        rot90_p: float = 0.5,
        elastic_p: float = 0.2,
        elastic_alpha: float = 200.0,
        elastic_sigma: float = 10.0,
        elastic_interpolation: int = cv2.INTER_LINEAR,
        hed_p: float = 0.5,
        hed_scale: tuple[float, float] = (0.85, 1.15),
        hed_shift: tuple[float, float] = (-0.05, 0.05),
        color_p: float = 0.3,
        brightness: float = 0.1,
        contrast: float = 0.1,
        saturation: float = 0.1,
        hue: float = 0.02,
    ) -> None:
        self.transform = A.Compose(
            [
                A.HorizontalFlip(p=flip_p),
                A.VerticalFlip(p=flip_p),
                A.RandomRotate90(p=rot90_p),
                A.ElasticTransform(
                    alpha=elastic_alpha,
                    sigma=elastic_sigma,
                    interpolation=elastic_interpolation,
                    mask_interpolation=cv2.INTER_NEAREST,
                    # Constant 0 borders: reflecting would copy a nucleus and its id.
                    border_mode=cv2.BORDER_CONSTANT,
                    fill=0,
                    fill_mask=0,
                    p=elastic_p,
                ),
                A.HEStain(
                    method="random_preset",
                    intensity_scale_range=hed_scale,
                    intensity_shift_range=hed_shift,
                    p=hed_p,
                ),
                A.ColorJitter(
                    brightness=brightness,
                    contrast=contrast,
                    saturation=saturation,
                    hue=hue,
                    p=color_p,
                ),
            ],
            seed=0,
        )

    def __call__(self, image, label, seed):
        self.transform.set_random_seed(int(seed) % (2**32))
        out = self.transform(image=image, mask=label)
        return np.ascontiguousarray(out["image"]), np.ascontiguousarray(out["mask"])
