"""Random nucleus masks: instance label maps drawn from a seeded generator.

Every generator is called as ``generator(rng, size) -> int32 (size, size)`` with ids ``1..N``
(0 = background). Ids are recomputed after every transform, so the ids present are exactly the
nuclei that remain visible; a nucleus that is cut to fewer than ``min_area`` pixels by the patch
border or a cover is removed.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
from scipy import ndimage
from skimage import measure
from skimage.segmentation import relabel_sequential

from histo_gan.readers import LABEL_SUFFIXES, DataError, read_label_map

__all__ = [
    "CentroidMapGenerator",
    "MaskGenerator",
    "NucleusShapeDictionary",
    "RandomPolygonMasks",
    "centroid_point_map",
    "drop_small",
]


class MaskGenerator:
    """Interface of the mask generators."""

    def __call__(self, rng: np.random.Generator, size: int) -> np.ndarray:
        raise NotImplementedError


def drop_small(label: np.ndarray, min_area: int) -> np.ndarray:
    """Keep the largest connected piece of each id (overlaps, covers and the patch border can
    split a nucleus), remove ids with fewer than ``min_area`` pixels, renumber ``1..N``."""
    label = _largest_part_per_id(label)
    areas = np.bincount(label.ravel())
    small = areas < min_area
    small[0] = False
    label = np.where(small[label], 0, label)
    return relabel_sequential(label)[0].astype(np.int32)


def _place(
    canvas: np.ndarray, shape_mask: np.ndarray, y: int, x: int, new_id: int, max_overlap: float
) -> bool:
    """Paste ``shape_mask`` at ``(y, x)`` (top-left) unless it would overlap existing nuclei by
    more than ``max_overlap`` of its area; overlapped pixels go to the new nucleus."""
    h, w = shape_mask.shape
    window = canvas[y : y + h, x : x + w]
    shape_mask = shape_mask[: window.shape[0], : window.shape[1]]
    area = int(shape_mask.sum())
    if area == 0:
        return False
    if (window[shape_mask] > 0).sum() > max_overlap * area:
        return False
    window[shape_mask] = new_id
    return True


def _quadrilateral_warp(
    label: np.ndarray, rng: np.random.Generator, size: int, jitter: float
) -> np.ndarray:
    """Map a random quadrilateral inside ``label`` (a canvas with a margin) onto ``size x size``.

    One perspective transform for the whole mask, so neighbouring nuclei are distorted alike
    (Hou et al. 2017, §2.3). Nearest-neighbour sampling keeps ids exact.
    """
    margin = (label.shape[0] - size) / 2
    inner = np.array([[0, 0], [size, 0], [size, size], [0, size]], np.float32) + margin
    corners = inner + rng.uniform(-jitter, jitter, size=(4, 2)).astype(np.float32) * size
    corners = np.clip(corners, 0, label.shape[0])
    target = np.array([[0, 0], [size, 0], [size, size], [0, size]], np.float32)
    matrix = cv2.getPerspectiveTransform(corners, target)
    return cv2.warpPerspective(
        label.astype(np.float32), matrix, (size, size), flags=cv2.INTER_NEAREST
    ).astype(np.int32)


class RandomPolygonMasks(MaskGenerator):
    """Random irregular polygons, then one random quadrilateral warp of the whole mask (Hou).

    Points on a circle are moved in angle (``irregularity``) and radius (``spikiness``);
    polygons are placed at random until ``density`` of the area is covered or ``max_tries``
    placements fail.

    Args:
        radius: range of the mean polygon radius in pixels (MoNuSeg at 40x: median nucleus
            area about 500 px, radius about 13 px).
        vertices: range of the number of vertices.
        irregularity: 0 (even angular steps) .. 1 (very uneven).
        spikiness: 0 (round) .. 1 (spiky): relative standard deviation of vertex radii.
        elongation: range of the ratio of the polygon's axes (1 = round).
        density: fraction of the patch to cover with nuclei (drawn per mask from this range).
        max_overlap: largest fraction of a new polygon that may cover earlier ones (0 gives the
            non-overlapping masks of Hou 2017; Hou 2019 allows some overlap).
        warp: corner jitter of the quadrilateral warp as a fraction of the patch size.
        min_area: smaller nuclei (after warping and cropping) are removed.
        max_tries: placement attempts per mask.
    """

    def __init__(
        self,
        radius: tuple[float, float] = (7.0, 16.0),
        vertices: tuple[int, int] = (8, 16),
        irregularity: float = 0.3,
        spikiness: float = 0.15,
        elongation: tuple[float, float] = (1.0, 1.8),
        density: tuple[float, float] = (0.1, 0.3),
        max_overlap: float = 0.0,
        warp: float = 0.08,
        min_area: int = 20,
        max_tries: int = 400,
    ) -> None:
        self.radius, self.vertices = radius, vertices
        self.irregularity, self.spikiness, self.elongation = irregularity, spikiness, elongation
        self.density, self.max_overlap, self.warp = density, max_overlap, warp
        self.min_area, self.max_tries = min_area, max_tries

    def _draw_candidates(self, rng: np.random.Generator, count: int) -> dict[str, np.ndarray]:
        """Vertices of ``count`` candidate polygons around the origin, drawn in one go.

        Returns ``x``, ``y`` ``(count, max_vertices)`` (entries past ``n`` unused), ``n``,
        ``extent`` (half-side of each bounding square) and ``centre`` in [0, 1)^2.
        """
        most = self.vertices[1]
        n = rng.integers(self.vertices[0], most + 1, count)
        used = np.arange(most)[None, :] < n[:, None]
        steps = rng.uniform(1 - self.irregularity, 1 + self.irregularity, (count, most)) * used
        angles = np.cumsum(steps, axis=1) / steps.sum(axis=1, keepdims=True) * 2 * np.pi
        angles += rng.uniform(0, 2 * np.pi, (count, 1))
        radius = rng.uniform(*self.radius, (count, 1))
        radii = radius * np.clip(1.0 + rng.normal(0.0, self.spikiness, (count, most)), 0.3, 2.0)
        stretch = rng.uniform(*self.elongation, (count, 1))
        tilt = rng.uniform(0, np.pi, (count, 1))
        x, y = radii * np.cos(angles) * stretch, radii * np.sin(angles) / stretch
        x, y = x * np.cos(tilt) - y * np.sin(tilt), x * np.sin(tilt) + y * np.cos(tilt)
        extent = (
            np.ceil(np.where(used, np.maximum(np.abs(x), np.abs(y)), 0).max(axis=1)).astype(int) + 1
        )
        return {"x": x, "y": y, "n": n, "extent": extent, "centre": rng.random((count, 2))}

    @staticmethod
    def _rasterise(c: dict[str, np.ndarray], k: int) -> np.ndarray:
        """Candidate ``k`` as a boolean mask in its bounding square."""
        n, extent = int(c["n"][k]), int(c["extent"][k])
        mask = np.zeros((2 * extent + 1, 2 * extent + 1), np.uint8)
        points = np.stack([c["x"][k, :n], c["y"][k, :n]], axis=1) + extent
        cv2.fillPoly(mask, [points.round().astype(np.int32)], 1)
        return mask.astype(bool)

    def __call__(self, rng: np.random.Generator, size: int) -> np.ndarray:
        margin = int(np.ceil(self.warp * size + self.radius[1]))
        canvas = np.zeros((size + 2 * margin, size + 2 * margin), np.int32)
        target = rng.uniform(*self.density) * canvas.size
        p = self._draw_candidates(rng, self.max_tries)
        covered, next_id = 0, 1
        for k in range(self.max_tries):
            if covered >= target:
                break
            cy, cx = (p["centre"][k] * (canvas.shape[0] - 1)).astype(int)
            if canvas[cy, cx] and self.max_overlap < 0.5:
                continue  # the centre is taken: this polygon would overlap by half or more
            shape = self._rasterise(p, k)
            y, x = cy - shape.shape[0] // 2, cx - shape.shape[1] // 2
            top, left = max(0, -y), max(0, -x)
            if _place(canvas, shape[top:, left:], max(0, y), max(0, x), next_id, self.max_overlap):
                covered += int(shape.sum())
                next_id += 1
        return drop_small(_quadrilateral_warp(canvas, rng, size, self.warp), self.min_area)


def _read_label_maps(folder: str | Path, purpose: str) -> tuple[list[str], list[np.ndarray]]:
    """Stems and arrays of every label map in ``folder``; an error names the folder if none."""
    folder = Path(folder)
    files = (
        sorted(p for p in folder.glob("*") if p.suffix.lower() in LABEL_SUFFIXES)
        if folder.is_dir()
        else []
    )
    if not files:
        raise DataError(f"{folder}: no label maps {purpose}")
    return [p.stem for p in files], [read_label_map(p) for p in files]


def _shapes_from_label_maps(label_maps: Sequence[np.ndarray], min_area: int) -> list[np.ndarray]:
    shapes = []
    for label in label_maps:
        for index, box in enumerate(ndimage.find_objects(label), start=1):
            if box is None:
                continue
            mask = label[box] == index
            touches_border = (
                box[0].start == 0
                or box[1].start == 0
                or box[0].stop == label.shape[0]
                or box[1].stop == label.shape[1]
            )
            if mask.sum() >= min_area and not touches_border:
                shapes.append(mask)
    return shapes


class NucleusShapeDictionary(MaskGenerator):
    """Real nucleus shapes at random scale, rotation and position (Mahmood et al. 2019, §III.D).

    Args:
        label_maps: folder of real instance label maps to build the dictionary from (nuclei
            that touch the image border are left out, as they are cut).
        scale: range of the isotropic scale factor.
        density: fraction of the patch to cover (drawn per mask from this range).
        max_overlap: largest fraction of a placed nucleus that may cover earlier ones.
        min_area: smallest nucleus kept in the dictionary and in the masks.
        max_tries: placement attempts per mask.
    """

    def __init__(
        self,
        label_maps: str | Path,
        scale: tuple[float, float] = (0.8, 1.25),
        density: tuple[float, float] = (0.1, 0.3),
        max_overlap: float = 0.1,
        min_area: int = 20,
        max_tries: int = 400,
    ) -> None:
        _, maps = _read_label_maps(label_maps, "to build the nucleus-shape dictionary from")
        self.shapes = _shapes_from_label_maps(maps, min_area)
        if not self.shapes:
            raise ValueError(f"{label_maps}: no whole nucleus of at least {min_area} px found")
        self.scale, self.density, self.max_overlap = scale, density, max_overlap
        self.min_area, self.max_tries = min_area, max_tries

    def transformed_shape(self, rng: np.random.Generator) -> np.ndarray:
        shape = self.shapes[int(rng.integers(len(self.shapes)))].astype(np.uint8)
        side = int(np.ceil(np.hypot(*shape.shape) * self.scale[1])) + 2
        canvas = np.zeros((side, side), np.uint8)
        y0, x0 = (side - shape.shape[0]) // 2, (side - shape.shape[1]) // 2
        canvas[y0 : y0 + shape.shape[0], x0 : x0 + shape.shape[1]] = shape
        matrix = cv2.getRotationMatrix2D(
            (side / 2, side / 2), rng.uniform(0, 360), rng.uniform(*self.scale)
        )
        out = cv2.warpAffine(canvas, matrix, (side, side), flags=cv2.INTER_NEAREST) > 0
        rows, cols = np.flatnonzero(out.any(1)), np.flatnonzero(out.any(0))
        return out[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1] if len(rows) else out

    def __call__(self, rng: np.random.Generator, size: int) -> np.ndarray:
        label = np.zeros((size, size), np.int32)
        target = rng.uniform(*self.density) * label.size
        covered, next_id = 0, 1
        for _ in range(self.max_tries):
            if covered >= target:
                break
            shape = self.transformed_shape(rng)
            # allow nuclei to be cut by the patch border, as in real patches
            y = int(rng.integers(-shape.shape[0] // 2, size - shape.shape[0] // 2))
            x = int(rng.integers(-shape.shape[1] // 2, size - shape.shape[1] // 2))
            top, left = max(0, -y), max(0, -x)
            clipped = shape[top:, left:]
            if _place(label, clipped, max(0, y), max(0, x), next_id, self.max_overlap):
                covered += int(clipped.sum())
                next_id += 1
        return drop_small(label, self.min_area)


def centroid_point_map(label: np.ndarray, radius: int = 2) -> np.ndarray:
    """DAFF-GAN stage-1 input: ``uint8`` RGB image, black, a white disc at each nucleus centroid."""
    image = np.zeros((*label.shape, 3), np.uint8)
    ids = np.unique(label)[1:]
    if len(ids):
        centres = ndimage.center_of_mass(np.ones_like(label), label, ids)
        for cy, cx in centres:
            cv2.circle(image, (int(round(cx)), int(round(cy))), radius, (255, 255, 255), -1)
    return image


class CentroidMapGenerator(MaskGenerator):
    """Real masks, randomised (DAFF-GAN §III.A): flip, rotation, affine, cover, combine.

    A random crop of a real label map is flipped and rotated by a multiple of 90 degrees,
    mildly sheared/scaled, partly covered (random rectangles cleared), and with probability
    ``combine_p`` its left or top half is replaced by the same half of another real crop.

    Args:
        label_maps: folder of real instance label maps.
        affine: largest shear and relative scale change of the affine step.
        cover_p: probability of clearing one random rectangle (up to ``cover_size`` of the side).
        combine_p: probability of combining two real crops.
        min_area: smaller nuclei after the transforms are removed.
    """

    def __init__(
        self,
        label_maps: str | Path,
        affine: float = 0.1,
        cover_p: float = 0.3,
        cover_size: float = 0.3,
        combine_p: float = 0.3,
        min_area: int = 20,
    ) -> None:
        self.source_ids, self.label_maps = _read_label_maps(label_maps, "for centroid maps")
        self.affine, self.cover_p, self.cover_size = affine, cover_p, cover_size
        self.combine_p, self.min_area = combine_p, min_area

    def _crop(self, rng: np.random.Generator, size: int, used: list[str]) -> np.ndarray:
        which = int(rng.integers(len(self.label_maps)))
        label = self.label_maps[which]
        if min(label.shape) < size:
            raise ValueError(f"real label maps are {label.shape}, smaller than the size {size}")
        y = int(rng.integers(0, label.shape[0] - size + 1))
        x = int(rng.integers(0, label.shape[1] - size + 1))
        used.append(self.source_ids[which])
        return label[y : y + size, x : x + size].copy()

    def __call__(self, rng: np.random.Generator, size: int) -> np.ndarray:
        return self.sample(rng, size)[0]

    def sample(self, rng: np.random.Generator, size: int) -> tuple[np.ndarray, list[str]]:
        """The randomised mask and the ids of the real label maps it came from."""
        used: list[str] = []
        label = self._crop(rng, size, used)
        if rng.random() < self.combine_p:
            other = self._crop(rng, size, used)
            other = np.where(other > 0, other + label.max(), 0)
            half = size // 2
            if rng.random() < 0.5:
                label[:, :half] = other[:, :half]
            else:
                label[:half] = other[:half]
        if rng.random() < 0.5:
            label = label[:, ::-1]
        label = np.rot90(label, int(rng.integers(4))).copy()
        shear, scale = (
            rng.uniform(-self.affine, self.affine),
            1 + rng.uniform(-self.affine, self.affine),
        )
        matrix = np.array([[scale, shear, 0], [0, scale, 0]], np.float32)
        matrix[:, 2] = (size / 2) - matrix[:, :2] @ np.array([size / 2, size / 2], np.float32)
        label = cv2.warpAffine(
            label.astype(np.float32), matrix, (size, size), flags=cv2.INTER_NEAREST
        ).astype(np.int32)
        if rng.random() < self.cover_p:
            h, w = (rng.uniform(0.1, self.cover_size, 2) * size).astype(int)
            y, x = int(rng.integers(0, size - h + 1)), int(rng.integers(0, size - w + 1))
            label[y : y + h, x : x + w] = 0
        return drop_small(label, self.min_area), used


def _largest_part_per_id(label: np.ndarray) -> np.ndarray:
    """Keep only the largest connected piece of each id (a cover or a cut can split a nucleus)."""
    pieces = measure.label(label, background=0, connectivity=1)  # equal-valued regions
    count = int(pieces.max())
    if count == 0:
        return label
    piece_area = np.bincount(pieces.ravel(), minlength=count + 1)
    piece_id = np.zeros(count + 1, np.int64)
    piece_id[pieces.ravel()] = label.ravel()
    best: dict[int, int] = {}
    for k in range(1, count + 1):
        nucleus = int(piece_id[k])
        if nucleus not in best or piece_area[k] > piece_area[best[nucleus]]:
            best[nucleus] = k
    keep = np.zeros(count + 1, bool)
    keep[list(best.values())] = True
    return np.where(keep[pieces], label, 0)
