"""Data layer: readers, sources, splits, augmentation, patch datasets and the DataModule.

The names are loaded on first use, so that the torch-free parts (``readers``, ``sources``,
``synthetic``, ``splits``, ``organs``) can be imported by torch-free code such as
``histo-gan synthesize`` (:mod:`histo_gan.synthesis.cli`) without pulling in Lightning
through :class:`HistoDataModule`.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "Augmentation": "augment",
    "HistoAugment": "augment",
    "NoAugment": "augment",
    "HistoDataModule": "datamodule",
    "OrganTable": "organs",
    "DataError": "readers",
    "SettingError": "readers",
    "BundledSample": "sources",
    "ConsepFolder": "sources",
    "GeneratedInitialPatches": "sources",
    "GeneratedMasks": "sources",
    "ImageFolder": "sources",
    "ImageSource": "sources",
    "LabelMapFolder": "sources",
    "MoNuSegXMLFolder": "sources",
    "SyntheticFolder": "sources",
    "bundled_sample_dir": "sources",
    "FixedSplit": "splits",
    "LeaveOneOrganOut": "splits",
    "OrganSplit": "splits",
    "RandomSplit": "splits",
    "Split": "splits",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'histo_gan.data' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"histo_gan.data.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
