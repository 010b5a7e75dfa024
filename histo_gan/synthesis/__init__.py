"""GAN-free initial synthesis (numpy, scipy, scikit-image, OpenCV; no torch)."""

from histo_gan.synthesis.background import Inpainter, NavierStokesInpainter, TeleaInpainter
from histo_gan.synthesis.compose import Compositor, nuclear_texture
from histo_gan.synthesis.masks import (
    CentroidMapGenerator,
    MaskGenerator,
    NucleusShapeDictionary,
    RandomPolygonMasks,
    centroid_point_map,
)
from histo_gan.synthesis.pipeline import CentroidSynthesis, InitialSynthesis, prepare_tile
from histo_gan.synthesis.stain import OtsuThreshold, PercentileThreshold, legacy_hed

__all__ = [
    "CentroidMapGenerator",
    "CentroidSynthesis",
    "Compositor",
    "InitialSynthesis",
    "Inpainter",
    "MaskGenerator",
    "NavierStokesInpainter",
    "NucleusShapeDictionary",
    "OtsuThreshold",
    "PercentileThreshold",
    "RandomPolygonMasks",
    "TeleaInpainter",
    "centroid_point_map",
    "legacy_hed",
    "nuclear_texture",
    "prepare_tile",
]
