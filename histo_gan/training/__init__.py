"""What the methods share: evaluation roles, GAN update mechanics, schedules, phase plans,
coarse-to-fine stages, targets, mask encodings and pairings, the segmentation head and
checkpointed state. Nothing here knows a method (``histo_gan.modules``); each method file
composes these parts."""

from histo_gan.training.coarse_to_fine import CoarseToFine
from histo_gan.training.evaluation import SegmentImages, SynthesizeImages
from histo_gan.training.pairings import CentroidsToMask, MaskToImage
from histo_gan.training.phases import Phase, PhasePlan, RefinerPhases, Rounds
from histo_gan.training.schedules import ConstantRate, LinearDecay
from histo_gan.training.segmentation_head import SegmentationHead

__all__ = [
    "CentroidsToMask",
    "CoarseToFine",
    "ConstantRate",
    "LinearDecay",
    "MaskToImage",
    "Phase",
    "PhasePlan",
    "RefinerPhases",
    "Rounds",
    "SegmentImages",
    "SegmentationHead",
    "SynthesizeImages",
]
