"""One LightningModule per method, and the small helpers they share."""

from histo_gan.modules.cgan_segmenter import SpectralNormCGANSegmenterModule
from histo_gan.modules.coarse_to_fine import CoarseToFine
from histo_gan.modules.cyclegan import CycleGANModule
from histo_gan.modules.diffusion import DiffusionModule, LinearWarmup, MaskCondition
from histo_gan.modules.evaluation import SegmentImages, SynthesizeImages
from histo_gan.modules.hou_hard_examples import HardExampleRefinerModule
from histo_gan.modules.hou_importance import ImportanceSamplingRefinerModule
from histo_gan.modules.pairings import CentroidsToMask, MaskToImage
from histo_gan.modules.phases import Phase, PhasePlan, RefinerPhases, Rounds
from histo_gan.modules.pix2pixhd import Pix2PixHDModule
from histo_gan.modules.schedules import ConstantRate, LinearDecay
from histo_gan.modules.segmentation_head import SegmentationHead
from histo_gan.modules.segmenter import SegmenterModule
from histo_gan.modules.template import TemplateModule

__all__ = [
    "CentroidsToMask",
    "CoarseToFine",
    "ConstantRate",
    "CycleGANModule",
    "DiffusionModule",
    "HardExampleRefinerModule",
    "ImportanceSamplingRefinerModule",
    "LinearDecay",
    "LinearWarmup",
    "MaskCondition",
    "MaskToImage",
    "Phase",
    "PhasePlan",
    "Pix2PixHDModule",
    "RefinerPhases",
    "Rounds",
    "SegmentImages",
    "SegmentationHead",
    "SegmenterModule",
    "SpectralNormCGANSegmenterModule",
    "SynthesizeImages",
    "TemplateModule",
]
