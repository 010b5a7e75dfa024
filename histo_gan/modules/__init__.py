"""The methods: one LightningModule per method, each in its own file on the method contract
(``template.py``). The parts they share live in :mod:`histo_gan.training`."""

from histo_gan.modules.cgan_segmenter import SpectralNormCGANSegmenterModule
from histo_gan.modules.cyclegan import CycleGANModule
from histo_gan.modules.diffusion import DiffusionModule, LinearWarmup, MaskCondition
from histo_gan.modules.hou_hard_examples import HardExampleRefinerModule
from histo_gan.modules.hou_importance import ImportanceSamplingRefinerModule
from histo_gan.modules.pix2pixhd import Pix2PixHDModule
from histo_gan.modules.segmenter import SegmenterModule
from histo_gan.modules.template import TemplateModule

__all__ = [
    "CycleGANModule",
    "DiffusionModule",
    "HardExampleRefinerModule",
    "ImportanceSamplingRefinerModule",
    "LinearWarmup",
    "MaskCondition",
    "Pix2PixHDModule",
    "SegmenterModule",
    "SpectralNormCGANSegmenterModule",
    "TemplateModule",
]
