"""Image sources: lists of images that are enumerated cheaply and loaded on demand.

A source is what a config names to point histo-gan at data, e.g.::

    source:
      class_path: histo_gan.data.LabelMapFolder
      init_args: {images: /data/monuseg/images, labels: /data/monuseg/instance_masks}

Every source has ``image_ids`` and ``organs`` (known without decoding any pixels), a
``labeled`` flag, ``__len__`` and ``load(index) -> LabeledImage``. Loading validates the
data (see :mod:`histo_gan.types`) and names the file in every error.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from histo_gan.data.organs import OrganTable
from histo_gan.data.synthetic import SyntheticDataset
from histo_gan.data.synthetic import repair as repair_dataset
from histo_gan.readers import (
    IMAGE_SUFFIXES,
    LABEL_SUFFIXES,
    DataError,
    rasterize_polygons,
    read_aperio_xml,
    read_consep_mat,
    read_image,
    read_label_map,
)
from histo_gan.synthesis.masks import RandomPolygonMasks
from histo_gan.synthesis.pipeline import InitialSynthesis
from histo_gan.types import UNKNOWN_ORGAN, LabeledImage

__all__ = [
    "BundledSample",
    "ConsepFolder",
    "GeneratedMasks",
    "ImageFolder",
    "ImageSource",
    "LabelMapFolder",
    "MoNuSegXMLFolder",
    "SubsetSource",
    "SyntheticFolder",
    "bundled_sample_dir",
]


def bundled_sample_dir() -> Path:
    """The folder of the sample crops shipped inside the package."""
    return Path(__file__).resolve().parents[1] / "sample_data"


def _list_files(folder: Path, suffixes: Sequence[str], what: str) -> list[Path]:
    if not folder.exists():
        raise DataError(f"{folder}: {what} folder does not exist")
    if not folder.is_dir():
        raise DataError(f"{folder}: expected a folder of {what}, found a file")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in suffixes)
    if not files:
        raise DataError(
            f"{folder}: no {what} found (looked for files ending in {', '.join(suffixes)})"
        )
    by_stem: dict[str, Path] = {}
    for path in files:  # the stem is the image id: two files must not share one
        if path.stem in by_stem:
            raise DataError(
                f"{folder}: {by_stem[path.stem].name} and {path.name} have the same name "
                f"{path.stem!r}; keep one of them"
            )
        by_stem[path.stem] = path
    return files


def _pair_by_stem(
    images_dir: Path, labels_dir: Path, label_suffixes: Sequence[str], what: str
) -> tuple[list[Path], list[Path]]:
    """Images and their label files, matched by file stem; every image needs one."""
    image_files = _list_files(images_dir, IMAGE_SUFFIXES, "images")
    labels = {p.stem: p for p in _list_files(labels_dir, label_suffixes, f"{what}s")}
    unmatched = [p.name for p in image_files if p.stem not in labels]
    if unmatched:
        raise DataError(
            f"{labels_dir}: no {what} for {len(unmatched)} image(s) of {images_dir}, "
            f"e.g. {unmatched[:3]}"
        )
    return image_files, [labels[p.stem] for p in image_files]


class ImageSource:
    """Base of all sources: ``image_ids[i]`` and ``organs[i]`` describe image ``i``.

    Subclasses fill ``image_ids``, ``organs`` and ``labeled`` in ``__init__`` and implement
    :meth:`load`.
    """

    image_ids: list[str]
    organs: list[str]
    labeled: bool = True

    def __len__(self) -> int:
        return len(self.image_ids)

    def load(self, index: int) -> LabeledImage:
        raise NotImplementedError

    def subset(self, image_ids: Sequence[str]) -> SubsetSource:
        """A view of this source restricted to ``image_ids`` (in the given order)."""
        return SubsetSource(self, image_ids)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({len(self)} images)"


class SubsetSource(ImageSource):
    """The images of ``parent`` whose ids are in ``image_ids``."""

    def __init__(self, parent: ImageSource, image_ids: Sequence[str]) -> None:
        position = {image_id: i for i, image_id in enumerate(parent.image_ids)}
        missing = [i for i in image_ids if i not in position]
        if missing:
            raise DataError(f"{parent!r}: unknown image ids {missing[:5]}")
        self.parent = parent
        self.indices = [position[i] for i in image_ids]
        self.image_ids = [parent.image_ids[i] for i in self.indices]
        self.organs = [parent.organs[i] for i in self.indices]
        self.labeled = parent.labeled

    def load(self, index: int) -> LabeledImage:
        return self.parent.load(self.indices[index])


class LabelMapFolder(ImageSource):
    """Images paired by file stem with instance label maps (PNG/TIFF/.npy/.mat).

    Args:
        images: folder of RGB images (``.tif``, ``.png``, ``.jpg``, ...).
        labels: folder of label maps named like the images (``TCGA-X.tif`` <-> ``TCGA-X.png``).
        organ_table: CSV of ``prefix,organ``; ``None`` uses the bundled MoNuSeg table.
    """

    def __init__(
        self, images: str | Path, labels: str | Path, organ_table: str | Path | None = None
    ) -> None:
        self.images_dir, self.labels_dir = Path(images), Path(labels)
        self.image_files, self.label_files = _pair_by_stem(
            self.images_dir, self.labels_dir, LABEL_SUFFIXES, "label map"
        )
        self.image_ids = [p.stem for p in self.image_files]
        table = OrganTable(organ_table)
        self.organs = [table.organ_of(i) for i in self.image_ids]

    def load(self, index: int) -> LabeledImage:
        image_path, label_path = self.image_files[index], self.label_files[index]
        image = read_image(image_path)
        label = read_label_map(label_path)
        if label.shape != image.shape[:2]:
            raise DataError(
                f"{label_path}: label map is {label.shape[1]}x{label.shape[0]} but image "
                f"{image_path.name} is {image.shape[1]}x{image.shape[0]} (width x height)"
            )
        return LabeledImage(
            image, label, self.image_ids[index], self.organs[index], source=str(image_path)
        )


class MoNuSegXMLFolder(ImageSource):
    """MoNuSeg images with Aperio ImageScope XML annotations rasterised to label maps.

    Only images with an XML file of the same stem are listed. Overlapping polygons are
    resolved by drawing order (see :func:`histo_gan.data.readers.rasterize_polygons`).

    Args:
        images: folder of the LZW TIFF images.
        annotations: folder of ``.xml`` files.
        organ_table: CSV of ``prefix,organ``; ``None`` uses the bundled MoNuSeg table.
        vertex_offset: see :func:`~histo_gan.data.readers.rasterize_polygons`.
    """

    def __init__(
        self,
        images: str | Path,
        annotations: str | Path,
        organ_table: str | Path | None = None,
        vertex_offset: float = -0.5,
    ) -> None:
        self.images_dir, self.annotations_dir = Path(images), Path(annotations)
        xml_files = {p.stem: p for p in _list_files(self.annotations_dir, (".xml",), "XML files")}
        image_files = [
            p for p in _list_files(self.images_dir, IMAGE_SUFFIXES, "images") if p.stem in xml_files
        ]
        if not image_files:
            raise DataError(
                f"{self.images_dir}: no image has an XML annotation in {self.annotations_dir}"
            )
        self.image_files = image_files
        self.xml_files = [xml_files[p.stem] for p in image_files]
        self.image_ids = [p.stem for p in image_files]
        table = OrganTable(organ_table)
        self.organs = [table.organ_of(i) for i in self.image_ids]
        self.vertex_offset = vertex_offset

    def load(self, index: int) -> LabeledImage:
        image = read_image(self.image_files[index])
        polygons = read_aperio_xml(self.xml_files[index])
        label = rasterize_polygons(polygons, image.shape[:2], self.vertex_offset)
        return LabeledImage(
            image,
            label,
            self.image_ids[index],
            self.organs[index],
            source=str(self.image_files[index]),
            meta={"annotation": str(self.xml_files[index]), "polygons": len(polygons)},
        )


class ConsepFolder(ImageSource):
    """CoNSeP-style data: ``Images/*.png`` with ``Labels/*.mat`` holding ``inst_map``/``type_map``.

    Args:
        images: folder of RGB images.
        labels: folder of ``.mat`` files named like the images.
        merge_types: merge the 7 CoNSeP classes into the 4 of HoVer-Net / DAFF-GAN.
    """

    def __init__(self, images: str | Path, labels: str | Path, merge_types: bool = False) -> None:
        self.images_dir, self.labels_dir = Path(images), Path(labels)
        self.image_files, self.mat_files = _pair_by_stem(
            self.images_dir, self.labels_dir, (".mat",), ".mat label file"
        )
        self.image_ids = [p.stem for p in self.image_files]
        self.organs = ["colon"] * len(self.image_files)  # CoNSeP is colorectal adenocarcinoma
        self.merge_types = merge_types

    def load(self, index: int) -> LabeledImage:
        image = read_image(self.image_files[index])
        inst_map, type_map = read_consep_mat(self.mat_files[index], self.merge_types)
        if inst_map.shape != image.shape[:2]:
            raise DataError(
                f"{self.mat_files[index]}: inst_map is {inst_map.shape} but image "
                f"{self.image_files[index].name} is {image.shape[:2]}"
            )
        return LabeledImage(
            image,
            inst_map,
            self.image_ids[index],
            self.organs[index],
            source=str(self.image_files[index]),
            type_map=type_map,
        )


class ImageFolder(ImageSource):
    """Plain images without labels: the real domain of unpaired GANs, style references.

    Args:
        root: folder of RGB images.
        organ: organ of every image, or ``None`` to look it up in ``organ_table``.
        organ_table: CSV of ``prefix,organ``; ``None`` uses the bundled MoNuSeg table.
        exclude: names of files in ``root`` to leave out (e.g. the unreadable ones that
            ``histo-gan segment --skip-unreadable`` found).
    """

    labeled = False

    def __init__(
        self,
        root: str | Path,
        organ: str | None = None,
        organ_table: str | Path | None = None,
        exclude: Sequence[str] = (),
    ) -> None:
        self.root = Path(root)
        files = _list_files(self.root, IMAGE_SUFFIXES, "images")
        self.image_files = [path for path in files if path.name not in set(exclude)]
        if not self.image_files:
            raise DataError(f"{self.root}: all {len(files)} images are excluded")
        self.image_ids = [p.stem for p in self.image_files]
        table = OrganTable(organ_table)
        self.organs = [organ or table.organ_of(i) for i in self.image_ids]

    def load(self, index: int) -> LabeledImage:
        return LabeledImage(
            read_image(self.image_files[index]),
            None,
            self.image_ids[index],
            self.organs[index],
            source=str(self.image_files[index]),
        )


class SyntheticFolder(ImageSource):
    """A synthetic dataset written by histo-gan (see :mod:`histo_gan.data.synthetic`).

    Args:
        root: the dataset folder.
        repair: repair a damaged dataset in place first (drops the damaged samples) instead
            of refusing it.
    """

    def __init__(self, root: str | Path, repair: bool = False) -> None:
        if repair:
            repair_dataset(root)
        self.dataset = SyntheticDataset(root)
        self.image_ids = [str(entry["id"]) for entry in self.dataset.manifest]
        self.organs = [str(entry.get("organ", "unknown")) for entry in self.dataset.manifest]

    def load(self, index: int) -> LabeledImage:
        return self.dataset[index]


class GeneratedMasks(ImageSource):
    """Random nucleus masks made on the fly (no files): the mask domain of mask -> H&E GANs.

    Item ``i`` is ``generator(np.random.default_rng([seed, i]), size)`` with a blank (black)
    image, so the same seed always gives the same masks.

    Args:
        generator: a mask generator of :mod:`histo_gan.synthesis.masks`.
        n: number of masks.
        size: side of each mask in pixels.
        seed: seed of the masks.
    """

    def __init__(self, generator, n: int = 256, size: int = 256, seed: int = 0) -> None:
        if n <= 0 or size <= 0:
            raise ValueError(f"GeneratedMasks needs n > 0 and size > 0, got n={n}, size={size}")
        self.generator, self.size, self.seed = generator, size, seed
        self.image_ids = [f"mask{i:06d}" for i in range(n)]
        self.organs = ["unknown"] * n

    def load(self, index: int) -> LabeledImage:
        label = self.generator(np.random.default_rng([self.seed, index]), self.size)
        image = np.zeros((self.size, self.size, 3), np.uint8)
        return LabeledImage(
            image,
            label,
            self.image_ids[index],
            is_synthetic=True,
            source="generated",
            meta={"seed": self.seed, "index": index},
        )


class GeneratedInitialPatches(ImageSource):
    """Initial synthetic patches made on the fly (no files): random nuclei composed onto
    inpainted real tissue, as ``histo-gan synthesize --method hou`` writes them.

    For small runs and tests that should not depend on a dataset made beforehand; for real
    runs, ``histo-gan synthesize`` once and read the dataset with :class:`SyntheticFolder`.
    Item ``i`` equals sample ``i`` of the same synthesis on disk (same ``seed``, ``size`` and
    source images), with its ``meta`` (``source_ids``, organ, crops).

    Args:
        source: the real tissue (labels unused; default: the bundled sample).
        n: number of patches.
        size: side of each patch in pixels.
        seed: seed of the synthesis.
        masks: the mask generator (default: Hou's random polygons).
    """

    def __init__(
        self,
        source: ImageSource | None = None,
        n: int = 256,
        size: int = 128,
        seed: int = 0,
        masks=None,
    ) -> None:
        if n <= 0:
            raise ValueError(f"GeneratedInitialPatches needs n > 0, got n={n}")
        self.source = source if source is not None else BundledSample()
        self.n, self.size, self.seed, self.masks = n, size, seed, masks
        self.image_ids = [f"initial{i:06d}" for i in range(n)]
        self.organs = [UNKNOWN_ORGAN] * n  # known per item once it is drawn (meta["organ"])
        self._synthesis = None

    def _built(self):
        if self._synthesis is None:
            images = [self.source.load(i) for i in range(len(self.source))]
            masks = self.masks if self.masks is not None else RandomPolygonMasks()
            self._synthesis = InitialSynthesis(images, masks, self.size, self.seed)
        return self._synthesis

    def load(self, index: int) -> LabeledImage:
        image, label, meta = self._built().sample(index)
        return LabeledImage(
            image,
            label,
            self.image_ids[index],
            organ=meta.get("organ", UNKNOWN_ORGAN),
            source="generated",
            is_synthetic=True,
            meta=meta,
        )


class BundledSample(LabelMapFolder):
    """The MoNuSeg crops shipped inside the package (see ``sample_data/README.md``)."""

    def __init__(self) -> None:
        root = bundled_sample_dir()
        super().__init__(root / "images", root / "labels")
