"""One LightningModule per method, and the small helpers they share."""

from histo_gan.modules.cgan_segmenter import SpectralNormCGANSegmenterModule
from histo_gan.modules.cyclegan import CycleGANModule
from histo_gan.modules.segmenter import SegmenterModule

__all__ = ["CycleGANModule", "SegmenterModule", "SpectralNormCGANSegmenterModule"]
