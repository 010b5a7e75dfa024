"""The file readers under their data-layer name; they live in :mod:`histo_gan.readers`.

The readers sit below both the data layer and :mod:`histo_gan.synthesis` (which reads label
maps without importing the data layer); this module keeps ``histo_gan.data.readers.X`` working.
"""

from __future__ import annotations

from histo_gan.readers import (
    CONSEP_FOUR_TYPE_MERGE,
    IMAGE_SUFFIXES,
    LABEL_SUFFIXES,
    DataError,
    SettingError,
    rasterize_polygons,
    read_aperio_xml,
    read_consep_mat,
    read_image,
    read_label_map,
)

__all__ = [
    "CONSEP_FOUR_TYPE_MERGE",
    "IMAGE_SUFFIXES",
    "LABEL_SUFFIXES",
    "DataError",
    "SettingError",
    "rasterize_polygons",
    "read_aperio_xml",
    "read_consep_mat",
    "read_image",
    "read_label_map",
]
