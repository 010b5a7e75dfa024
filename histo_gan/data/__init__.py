"""Data layer: readers, sources, splits, augmentation, patch datasets and the DataModule."""

from histo_gan.data.augment import Augmentation, HistoAugment, NoAugment
from histo_gan.data.datamodule import HistoDataModule
from histo_gan.data.organs import OrganTable
from histo_gan.data.readers import DataError
from histo_gan.data.sources import (
    BundledSample,
    ConsepFolder,
    GeneratedMasks,
    ImageFolder,
    ImageSource,
    LabelMapFolder,
    MoNuSegXMLFolder,
    SyntheticFolder,
    bundled_sample_dir,
)
from histo_gan.data.splits import FixedSplit, LeaveOneOrganOut, OrganSplit, RandomSplit, Split
from histo_gan.data.tiling import SlidingWindow

__all__ = [
    "Augmentation",
    "BundledSample",
    "ConsepFolder",
    "DataError",
    "FixedSplit",
    "GeneratedMasks",
    "HistoAugment",
    "HistoDataModule",
    "ImageFolder",
    "ImageSource",
    "LabelMapFolder",
    "LeaveOneOrganOut",
    "MoNuSegXMLFolder",
    "NoAugment",
    "OrganSplit",
    "OrganTable",
    "RandomSplit",
    "SlidingWindow",
    "Split",
    "SyntheticFolder",
    "bundled_sample_dir",
]
