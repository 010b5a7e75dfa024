"""Initial synthetic patches, with the expensive work done once per source tile.

Segmenting a source tile and inpainting its nuclei costs about a second per 200x200 patch in the
papers because it is redone for every patch. Here each source tile (a whole real image) is
prepared once: its nucleus-free background (super-segmentation + inpainting), its Eosin
channel (texture) and its nuclear colour (sub-segmentation). Patches are then random crops of
these, composed with a fresh random mask. Every sample is a pure function of
``(seed, index)``, so any number of workers, or a resumed run, writes identical files.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from histo_gan.synthesis.background import Inpainter, TeleaInpainter
from histo_gan.synthesis.compose import Compositor, nuclear_texture
from histo_gan.synthesis.masks import CentroidMapGenerator, MaskGenerator, centroid_point_map
from histo_gan.synthesis.stain import (
    SUB_SEGMENTATION_PERCENT,
    PercentileThreshold,
    Thresholder,
    legacy_hed,
)
from histo_gan.types import LabeledImage

__all__ = ["CentroidSynthesis", "InitialSynthesis", "PreparedTile", "Synthesis", "prepare_tile"]


@dataclass
class PreparedTile:
    """What a source tile contributes to patches.

    Attributes:
        image_id, organ: provenance.
        background: ``uint8`` ``(H, W, 3)``, nuclei inpainted away.
        eosin: ``float32`` ``(H, W)`` E channel (texture source).
        nuclear_od: ``float64`` ``(3,)`` mean optical density of sub-segmented nuclear pixels.
        nuclear_fraction: fraction of pixels removed by super-segmentation.
    """

    image_id: str
    organ: str
    background: np.ndarray
    eosin: np.ndarray
    nuclear_od: np.ndarray
    nuclear_fraction: float


def optical_density(rgb: np.ndarray) -> np.ndarray:
    return -np.log((rgb.astype(np.float64) + 1.0) / 256.0)


def prepare_tile(
    item: LabeledImage,
    super_segmentation: Thresholder,
    sub_segmentation: Thresholder,
    inpainter: Inpainter,
) -> PreparedTile:
    """Background, texture and nuclear colour of one real image."""
    hed = legacy_hed(item.image)
    nuclear = super_segmentation(hed[..., 0])
    inside = sub_segmentation(hed[..., 0])
    pixels = item.image[inside] if inside.any() else item.image.reshape(-1, 3)
    return PreparedTile(
        item.image_id,
        item.organ,
        inpainter(item.image, nuclear),
        hed[..., 1].astype(np.float32),
        optical_density(pixels).mean(axis=0),
        float(nuclear.mean()),
    )


class Synthesis:
    """Interface: ``sample(index) -> (image uint8 (S, S, 3), label int32 (S, S), meta dict)``."""

    method = "synthesis"

    def __init__(self, size: int, seed: int) -> None:
        self.size, self.seed = size, seed

    def rng(self, index: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, index])

    def pending_tiles(self) -> list[int]:
        """Indices of the source tiles still to prepare (none for a method without tiles)."""
        return []

    def make_tile(self, index: int):
        """Prepare tile ``index`` and return it (pure: another process may do it)."""
        raise IndexError(f"{type(self).__name__} has no source tiles")

    def set_tile(self, index: int, tile) -> None:
        """Store a tile made by :meth:`make_tile`, possibly in another process."""
        raise IndexError(f"{type(self).__name__} has no source tiles")

    def prepare(self, progress=None) -> None:
        """Do the per-tile work up front in this process (optional: ``sample`` prepares
        lazily). ``progress()`` is called after each tile."""
        for index in self.pending_tiles():
            self.set_tile(index, self.make_tile(index))
            if progress is not None:
                progress()

    def sample(self, index: int) -> tuple[np.ndarray, np.ndarray, dict]:
        raise NotImplementedError


def _check_size(images: Sequence[LabeledImage], size: int) -> None:
    if size <= 0:
        raise ValueError(f"patch size must be positive, got {size}")
    smallest = min(images, key=lambda item: min(item.shape))
    if min(smallest.shape) < size:
        raise ValueError(
            f"{smallest.source or smallest.image_id}: source tile is "
            f"{smallest.shape[1]}x{smallest.shape[0]}, smaller than the patch size {size}"
        )


def _crop(rng: np.random.Generator, shape: tuple[int, ...], size: int) -> tuple[int, int]:
    return int(rng.integers(0, shape[0] - size + 1)), int(rng.integers(0, shape[1] - size + 1))


class InitialSynthesis(Synthesis):
    """Hou et al. / Mahmood et al. initial synthesis: random nuclei on real, nucleus-free tissue.

    Args:
        images: real source tiles (uint8 RGB; labels are not used).
        masks: the mask generator (:class:`~histo_gan.synthesis.masks.RandomPolygonMasks` for
            Hou, :class:`~histo_gan.synthesis.masks.NucleusShapeDictionary` for Mahmood).
        size: patch side in pixels.
        seed: global seed; sample ``i`` uses ``np.random.default_rng([seed, i])``.
        super_segmentation: nuclear pixels to remove from the background.
        sub_segmentation: pixels certainly inside nuclei (nuclear colour).
        inpainter: fills the removed pixels.
        compositor: blends texture and background through the mask.
        texture_strength: how strongly the Eosin texture modulates the nuclear colour.
        method: name recorded in each sample's metadata.
    """

    def __init__(
        self,
        images: Sequence[LabeledImage],
        masks: MaskGenerator,
        size: int = 256,
        seed: int = 0,
        super_segmentation: Thresholder | None = None,
        sub_segmentation: Thresholder | None = None,
        inpainter: Inpainter | None = None,
        compositor: Compositor | None = None,
        texture_strength: float = 0.6,
        method: str = "hou",
    ) -> None:
        super().__init__(size, seed)
        if not images:
            raise ValueError("initial synthesis needs at least one source image")
        _check_size(images, size)
        self.images, self.masks = list(images), masks
        self.super_segmentation = super_segmentation or PercentileThreshold(dilation=2)
        self.sub_segmentation = sub_segmentation or PercentileThreshold(
            SUB_SEGMENTATION_PERCENT, dilation=0
        )
        self.inpainter = inpainter or TeleaInpainter()
        self.compositor = compositor or Compositor()
        self.texture_strength, self.method = texture_strength, method
        self.tiles: dict[int, PreparedTile] = {}

    def tile(self, index: int) -> PreparedTile:
        if index not in self.tiles:
            self.tiles[index] = self.make_tile(index)
        return self.tiles[index]

    def pending_tiles(self) -> list[int]:
        return [index for index in range(len(self.images)) if index not in self.tiles]

    def make_tile(self, index: int) -> PreparedTile:
        return prepare_tile(
            self.images[index], self.super_segmentation, self.sub_segmentation, self.inpainter
        )

    def set_tile(self, index: int, tile: PreparedTile) -> None:
        self.tiles[index] = tile

    def sample(self, index: int) -> tuple[np.ndarray, np.ndarray, dict]:
        rng = self.rng(index)
        n = len(self.images)
        source = int(rng.integers(n))
        texture_source = int((source + rng.integers(1, n)) % n) if n > 1 else source
        tile, texture_tile = self.tile(source), self.tile(texture_source)
        y, x = _crop(rng, tile.background.shape, self.size)
        ty, tx = _crop(rng, texture_tile.eosin.shape, self.size)
        background = tile.background[y : y + self.size, x : x + self.size]
        eosin = texture_tile.eosin[ty : ty + self.size, tx : tx + self.size]
        label = self.masks(rng, self.size)
        foreground = nuclear_texture(eosin, tile.nuclear_od, self.texture_strength)
        image = self.compositor(foreground, background, label, rng)
        meta = {
            "method": self.method,
            "seed": self.seed,
            "index": index,
            "source_ids": [tile.image_id, texture_tile.image_id],
            "organ": tile.organ,
            "crop": [y, x],
            "texture_crop": [ty, tx],
        }
        return image, label, meta


class CentroidSynthesis(Synthesis):
    """DAFF-GAN stage-1 pairs: a centroid-point map (the "image") and its real instance mask.

    Args:
        generator: randomised real masks.
        size: patch side in pixels.
        seed: global seed.
        radius: radius of the centroid discs in the point map.
    """

    method = "centroids"

    def __init__(
        self, generator: CentroidMapGenerator, size: int = 256, seed: int = 0, radius: int = 2
    ) -> None:
        super().__init__(size, seed)
        smallest = min(min(label.shape) for label in generator.label_maps)
        if smallest < size:
            raise ValueError(
                f"real label maps are {smallest} px, smaller than the patch size {size}"
            )
        self.generator, self.radius = generator, radius

    def sample(self, index: int) -> tuple[np.ndarray, np.ndarray, dict]:
        label, sources = self.generator.sample(self.rng(index), self.size)
        meta = {"method": self.method, "seed": self.seed, "index": index, "source_ids": sources}
        return centroid_point_map(label, self.radius), label, meta
