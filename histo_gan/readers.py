"""File readers: RGB images, instance label maps, Aperio XML, CoNSeP ``.mat``.

Every reader returns arrays in the conventions of :mod:`histo_gan.types` (``uint8`` RGB
``(H, W, 3)``, ``int32`` label maps ``(H, W)``) and raises :class:`DataError` (a
``ValueError``) whose message starts with the offending file's path.

A leaf of the package (numpy, the image decoders and :mod:`histo_gan.types` only), so that both
the data layer (:mod:`histo_gan.data`, which re-exports it as ``histo_gan.data.readers``) and
the GAN-free synthesis (:mod:`histo_gan.synthesis`, which must not import the data layer) read
files the same way.
"""

from __future__ import annotations

import warnings
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from histo_gan.types import validate_label_map

__all__ = [
    "IMAGE_SUFFIXES",
    "LABEL_SUFFIXES",
    "DataError",
    "SettingError",
    "read_aperio_xml",
    "read_consep_mat",
    "read_image",
    "read_label_map",
    "rasterize_polygons",
]

IMAGE_SUFFIXES = (".tif", ".tiff", ".png", ".jpg", ".jpeg", ".bmp")
LABEL_SUFFIXES = (".png", ".tif", ".tiff", ".npy", ".mat")

# The DAFF-GAN / HoVer-Net merge of CoNSeP's 7 nucleus types into 4:
# 1 other, 2 inflammatory, 3+4 epithelial, 5+6+7 spindle-shaped.
CONSEP_FOUR_TYPE_MERGE = {0: 0, 1: 1, 2: 2, 3: 3, 4: 3, 5: 4, 6: 4, 7: 4}


class DataError(ValueError):
    """Bad input data. The message names the file and the problem."""


class SettingError(DataError):
    """A setting that cannot work, e.g. ``data.batch_size`` 0.

    ``key`` is its dotted name in the config, ``value`` the value and ``problem`` why it cannot
    work (naming the data file involved, if any); :meth:`where` adds where the value was set.
    """

    def __init__(self, key: str, value: object, problem: str) -> None:
        self.key, self.value, self.problem = key, value, problem
        super().__init__(f"{key} {value!r}: {problem}")

    def where(self, origin: str | None) -> str:
        """The message with ``origin`` (e.g. ``set in conf/x.yaml``) after the value."""
        return str(self) if not origin else f"{self.key} {self.value!r} ({origin}): {self.problem}"


def _require_file(path: Path) -> None:
    if not path.exists():
        raise DataError(f"{path}: file does not exist")
    if not path.is_file():
        raise DataError(f"{path}: not a regular file")


def _read_raster(path: Path) -> np.ndarray:
    """Decode a TIFF (tifffile + imagecodecs) or any other format (OpenCV), unconverted."""
    _require_file(path)
    suffix = path.suffix.lower()
    try:
        if suffix in (".tif", ".tiff"):
            import logging

            import tifffile

            # tifffile logs and returns an empty array for a file cut before its directory
            logger = logging.getLogger("tifffile")
            level, logger.level = logger.level, logging.CRITICAL
            try:
                array = tifffile.imread(path)
            finally:
                logger.setLevel(level)
            if np.asarray(array).size == 0:
                raise DataError(f"{path}: could not decode the file as an image (truncated?)")
        else:
            import cv2

            array = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
            if array is None:
                raise DataError(f"{path}: could not decode the file as an image")
            if array.ndim == 3:
                # OpenCV decodes to BGR(A); the project speaks RGB.
                code = cv2.COLOR_BGRA2RGBA if array.shape[2] == 4 else cv2.COLOR_BGR2RGB
                array = cv2.cvtColor(array, code)
    except DataError:
        raise
    except Exception as error:  # decoders raise many types; all mean "unreadable"
        raise DataError(
            f"{path}: could not decode the file as an image ({type(error).__name__}: {error})"
        ) from error
    return np.asarray(array)


def read_image(path: str | Path) -> np.ndarray:
    """Read an RGB image as ``uint8`` ``(H, W, 3)``.

    Grayscale images are replicated to three channels and an alpha channel is dropped.
    16-bit images are rejected rather than silently rescaled.
    """
    path = Path(path)
    image = _read_raster(path)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise DataError(f"{path}: expected an RGB image (H, W, 3), got shape {image.shape}")
    if image.dtype != np.uint8:
        raise DataError(f"{path}: expected an 8-bit RGB image, got dtype {image.dtype}")
    return np.ascontiguousarray(image[..., :3])


def read_label_map(path: str | Path, key: str = "inst_map") -> np.ndarray:
    """Read an instance label map as ``int32`` ``(H, W)``.

    Accepts 8/16/32-bit PNG or TIFF, ``.npy`` and ``.mat`` (the array under ``key``).
    Float, multi-channel and negative maps are rejected with the file's name.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".npy":
        _require_file(path)
        try:
            label = np.load(path, allow_pickle=False)
        except Exception as error:
            raise DataError(f"{path}: unreadable .npy file ({error})") from error
    elif suffix == ".mat":
        label = _load_mat(path)
        if key not in label:
            raise DataError(f"{path}: no '{key}' array in the .mat file (has {sorted(label)})")
        label = np.asarray(label[key])
    else:
        label = _read_raster(path)
    if label.ndim == 3 and label.shape[2] in (3, 4):
        raise DataError(
            f"{path}: label map has {label.shape[2]} channels; expected a single-channel "
            "instance label map (H, W)"
        )
    try:
        return validate_label_map(label, str(path))
    except ValueError as error:
        raise DataError(str(error)) from error


def _load_mat(path: Path) -> dict:
    _require_file(path)
    import scipy.io

    try:
        content = scipy.io.loadmat(path)
    except Exception as error:
        raise DataError(f"{path}: unreadable .mat file ({error})") from error
    return {k: v for k, v in content.items() if not k.startswith("__")}


def read_consep_mat(
    path: str | Path, merge_types: bool = False
) -> tuple[np.ndarray, np.ndarray | None]:
    """Read a CoNSeP-style ``.mat`` label file.

    Returns:
        ``(inst_map, type_map)``: ``int32`` ``(H, W)`` each; ``type_map`` is ``None`` when the
        file has none. With ``merge_types`` the seven CoNSeP classes are merged into the four
        used by HoVer-Net and DAFF-GAN (other, inflammatory, epithelial, spindle-shaped).
    """
    path = Path(path)
    content = _load_mat(path)
    if "inst_map" not in content:
        raise DataError(f"{path}: no 'inst_map' array in the .mat file (has {sorted(content)})")
    try:
        inst_map = validate_label_map(np.asarray(content["inst_map"]).squeeze(), f"{path}:inst_map")
    except ValueError as error:
        raise DataError(str(error)) from error
    type_map = None
    if "type_map" in content:
        try:
            type_map = validate_label_map(
                np.asarray(content["type_map"]).squeeze(), f"{path}:type_map"
            )
        except ValueError as error:
            raise DataError(str(error)) from error
        if type_map.shape != inst_map.shape:
            raise DataError(
                f"{path}: type_map shape {type_map.shape} differs from inst_map {inst_map.shape}"
            )
        if merge_types:
            unknown = set(np.unique(type_map).tolist()) - set(CONSEP_FOUR_TYPE_MERGE)
            if unknown:
                raise DataError(f"{path}: type_map has classes {sorted(unknown)} outside 0..7")
            lookup = np.zeros(max(CONSEP_FOUR_TYPE_MERGE) + 1, dtype=np.int32)
            for old, new in CONSEP_FOUR_TYPE_MERGE.items():
                lookup[old] = new
            type_map = lookup[type_map]
    return inst_map, type_map


def read_aperio_xml(path: str | Path) -> list[np.ndarray]:
    """Read the nucleus polygons of an Aperio ImageScope XML file.

    Returns:
        One ``float64`` array ``(N_vertices, 2)`` of ``(x, y)`` pixel coordinates per
        ``<Region>``, in file order. Regions with fewer than 3 vertices cannot enclose pixels;
        they are dropped and counted in a single ``UserWarning``.

    Raises:
        DataError: the file is missing, is not XML, or has no ``<Region>`` with vertices.
    """
    path = Path(path)
    _require_file(path)
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as error:
        raise DataError(f"{path}: not a valid XML file ({error})") from error
    polygons: list[np.ndarray] = []
    degenerate, non_finite = 0, []
    for number, region in enumerate(root.iter("Region"), start=1):
        vertices = _region_vertices(path, number, region)
        if len(vertices) < 3:
            degenerate += 1
        elif not np.isfinite(vertices).all():
            non_finite.append(number)
        else:
            polygons.append(vertices)
    if non_finite:
        warnings.warn(
            f"{path}: skipped {len(non_finite)} region(s) with non-finite (NaN/inf) vertices "
            f"(regions {non_finite[:5]}, counted from 1)",
            UserWarning,
            stacklevel=2,
        )
    if not polygons:
        raise DataError(
            f"{path}: no annotated regions with 3 or more vertices "
            f"({degenerate} degenerate regions); is this an Aperio ImageScope annotation file?"
        )
    if degenerate:
        warnings.warn(
            f"{path}: skipped {degenerate} degenerate region(s) with fewer than 3 vertices",
            UserWarning,
            stacklevel=2,
        )
    return polygons


def _region_vertices(path: Path, number: int, region: ET.Element) -> np.ndarray:
    """``(N, 2)`` ``(x, y)`` of a ``<Region>``; a non-numeric coordinate names file and region."""
    vertices = []
    for vertex in region.iter("Vertex"):
        if "X" not in vertex.attrib or "Y" not in vertex.attrib:
            continue
        try:
            vertices.append((float(vertex.attrib["X"]), float(vertex.attrib["Y"])))
        except ValueError:
            raise DataError(
                f"{path}: region {number} (Id {region.get('Id', '?')}) has a non-numeric vertex "
                f"X={vertex.attrib['X']!r} Y={vertex.attrib['Y']!r}"
            ) from None
    return np.asarray(vertices, dtype=np.float64).reshape(-1, 2)


def rasterize_polygons(
    polygons: list[np.ndarray], shape: tuple[int, int], vertex_offset: float = -0.5
) -> np.ndarray:
    """Fill polygons into an ``int32`` instance label map of ``shape`` ``(H, W)``.

    Polygon ``k`` (0-based, in order) gets id ``k + 1``. Vertices are ``(x, y)`` in continuous
    image coordinates where pixel ``(r, c)`` covers ``[c, c+1) x [r, r+1)``; ``vertex_offset``
    (default -0.5) moves them to pixel-centre coordinates, and a pixel belongs to a polygon
    when its centre lies inside it (``skimage.draw.polygon``). On the 13 MoNuSeg XML files the
    -0.5 offset gives the highest haematoxylin contrast between filled and unfilled pixels.
    Overlaps: later polygons are drawn over earlier ones, so a
    pixel claimed by two nuclei goes to the one listed later in the file, the same order in
    which ImageScope draws them. A polygon that loses every pixel to later ones is absent from
    the map; callers that need a count compare ``len(polygons)`` with the ids present.
    """
    from skimage.draw import polygon as fill_polygon

    label = np.zeros(shape, dtype=np.int32)
    for index, vertices in enumerate(polygons, start=1):
        rows, cols = fill_polygon(
            vertices[:, 1] + vertex_offset, vertices[:, 0] + vertex_offset, shape=shape
        )
        label[rows, cols] = index
    return label
