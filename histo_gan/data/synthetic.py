"""The synthetic-dataset format: what ``histo-gan synthesize`` and the GAN exports write.

Layout of a dataset folder::

    dataset.json        {"format": "histo-gan-synthetic", "version": 1, ...creation metadata}
    manifest.jsonl      one JSON object per sample (see below), appended as samples complete
    images/<id>.png     uint8 RGB
    labels/<id>.png     instance label map: 16-bit PNG, or labels/<id>.tif (int32) for ids >= 2**16
    types/<id>.png      optional type map (16-bit PNG)

A manifest line: ``{"id", "image", "label", "weight", ...meta}`` with paths relative to the
folder; ``meta`` typically holds ``seed``, ``source_ids``, ``method`` and ``organ``.

Writes are atomic: every file goes to a temporary name in its folder and is renamed into place;
a manifest line is appended (and fsync'd) only after the sample's files exist. A crash leaves at
most orphan files and a torn last manifest line; reopening the writer repairs the manifest,
removes temporaries and orphans, and :attr:`SyntheticDatasetWriter.completed_ids` tells an
export which samples to skip. No torch here.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import tifffile

from histo_gan.data.readers import DataError, read_image, read_label_map
from histo_gan.types import UNKNOWN_ORGAN, LabeledImage, validate_image, validate_label_map

__all__ = ["FORMAT", "SyntheticDataset", "SyntheticDatasetWriter", "update_weights"]

FORMAT = {"format": "histo-gan-synthetic", "version": 1}
MANIFEST = "manifest.jsonl"
HEADER = "dataset.json"


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=".tmp-", delete=False) as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(f.name, path)


def _encode_png(array: np.ndarray, where: Path) -> bytes:
    if array.ndim == 3:
        array = cv2.cvtColor(array, cv2.COLOR_RGB2BGR)
    ok, buffer = cv2.imencode(".png", array)
    if not ok:
        raise DataError(f"{where}: could not encode PNG")
    return buffer.tobytes()


def _encode_tiff(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, array.astype(np.int32), compression="zlib")
    return buffer.getvalue()


def _read_manifest(root: Path, repair: bool) -> list[dict]:
    """Manifest entries; a torn (unterminated) last line is dropped, and cut off if ``repair``."""
    path = root / MANIFEST
    if not path.exists():
        return []
    data = path.read_bytes()
    complete = data if data.endswith(b"\n") or not data else data[: data.rfind(b"\n") + 1]
    if repair and len(complete) != len(data):
        _atomic_write_bytes(path, complete)
    entries = []
    for number, line in enumerate(complete.decode("utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entries.append(json.loads(line))
        except json.JSONDecodeError as error:
            raise DataError(f"{path}: line {number} is not valid JSON ({error.msg})") from error
    return entries


class SyntheticDatasetWriter:
    """Append samples to a synthetic dataset folder, atomically and resumably.

    Use as a context manager. Opening an existing folder resumes it: its header must have the
    same format, and samples already in the manifest are listed in :attr:`completed_ids`.

    Args:
        root: the dataset folder (created if missing).
        metadata: creation parameters stored in ``dataset.json`` (method, seed, source, ...).
    """

    def __init__(self, root: str | Path, metadata: dict | None = None) -> None:
        self.root = Path(root)
        self.metadata = dict(metadata or {})
        self.completed_ids: set[str] = set()
        self._manifest = None

    def __enter__(self) -> SyntheticDatasetWriter:
        for folder in ("images", "labels", "types"):
            (self.root / folder).mkdir(parents=True, exist_ok=True)
        header = self.root / HEADER
        if header.exists():
            existing = json.loads(header.read_text())
            if existing.get("format") != FORMAT["format"]:
                raise DataError(f"{header}: not a histo-gan synthetic dataset")
        else:
            _atomic_write_bytes(header, json.dumps({**FORMAT, **self.metadata}, indent=2).encode())
        entries = _read_manifest(self.root, repair=True)
        self.completed_ids = {str(e["id"]) for e in entries}
        self._remove_leftovers(
            {p for e in entries for p in (e["image"], e["label"], e.get("type"))}
        )
        self._manifest = open(self.root / MANIFEST, "a", encoding="utf-8")
        return self

    def _remove_leftovers(self, referenced: set) -> None:
        """Delete temporaries and files of samples that never reached the manifest."""
        for folder in ("images", "labels", "types"):
            for path in (self.root / folder).iterdir():
                relative = f"{folder}/{path.name}"
                if path.name.startswith(".tmp-") or relative not in referenced:
                    path.unlink()

    def add(
        self,
        sample_id: str,
        image: np.ndarray,
        label: np.ndarray,
        meta: dict | None = None,
        weight: float | None = None,
        type_map: np.ndarray | None = None,
    ) -> None:
        """Write one sample: ``image`` ``uint8`` ``(H, W, 3)``, ``label`` integer ``(H, W)``."""
        if self._manifest is None:
            raise RuntimeError("use SyntheticDatasetWriter as a context manager")
        if sample_id in self.completed_ids:
            raise DataError(f"{self.root}: sample {sample_id!r} is already in the dataset")
        if not sample_id or "/" in sample_id or sample_id.startswith("."):
            raise ValueError(f"invalid sample id {sample_id!r}")
        validate_image(image, sample_id)
        label = validate_label_map(label, sample_id)
        if label.shape != image.shape[:2]:
            raise ValueError(f"{sample_id}: label {label.shape} and image {image.shape[:2]} differ")
        image_path = f"images/{sample_id}.png"
        if label.max(initial=0) < 2**16:
            label_path, label_bytes = (
                f"labels/{sample_id}.png",
                _encode_png(label.astype(np.uint16), self.root),
            )
        else:
            label_path, label_bytes = f"labels/{sample_id}.tif", _encode_tiff(label)
        _atomic_write_bytes(self.root / image_path, _encode_png(image, self.root))
        _atomic_write_bytes(self.root / label_path, label_bytes)
        entry = {"id": sample_id, "image": image_path, "label": label_path}
        if type_map is not None:
            type_path = f"types/{sample_id}.png"
            _atomic_write_bytes(
                self.root / type_path, _encode_png(type_map.astype(np.uint16), self.root)
            )
            entry["type"] = type_path
        entry["weight"] = 1.0 if weight is None else float(weight)
        entry.update(meta or {})
        self._manifest.write(json.dumps(entry) + "\n")
        self._manifest.flush()
        os.fsync(self._manifest.fileno())
        self.completed_ids.add(sample_id)

    def __exit__(self, *exc_info) -> None:
        if self._manifest is not None:
            self._manifest.close()
            self._manifest = None


class SyntheticDataset:
    """Read a synthetic dataset: ``dataset[i]`` is a :class:`~histo_gan.types.LabeledImage`.

    Raises :class:`DataError` naming the file for a missing folder, header or manifest, a
    corrupt manifest line, duplicate ids, or a manifest entry whose files are missing.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise DataError(f"{self.root}: synthetic dataset folder does not exist")
        header = self.root / HEADER
        if not header.is_file():
            raise DataError(f"{header}: missing; is {self.root} a histo-gan synthetic dataset?")
        self.header = json.loads(header.read_text())
        if not (self.root / MANIFEST).is_file():
            raise DataError(f"{self.root / MANIFEST}: missing manifest")
        self.manifest = _read_manifest(self.root, repair=False)
        if not self.manifest:
            raise DataError(f"{self.root / MANIFEST}: the dataset has no samples")
        seen: set[str] = set()
        for entry in self.manifest:
            if entry["id"] in seen:
                raise DataError(f"{self.root / MANIFEST}: duplicate sample id {entry['id']!r}")
            seen.add(entry["id"])
            for key in ("image", "label"):
                if not (self.root / entry[key]).is_file():
                    raise DataError(f"{self.root / entry[key]}: listed in the manifest but missing")

    def __len__(self) -> int:
        return len(self.manifest)

    def __iter__(self) -> Iterator[LabeledImage]:
        return (self[i] for i in range(len(self)))

    def __getitem__(self, index: int) -> LabeledImage:
        entry = self.manifest[index]
        image_path = self.root / entry["image"]
        image = read_image(image_path)
        label = read_label_map(self.root / entry["label"])
        if label.shape != image.shape[:2]:
            raise DataError(
                f"{self.root / entry['label']}: shape {label.shape} differs from the image's"
            )
        type_map = read_label_map(self.root / entry["type"]) if "type" in entry else None
        reserved = {"id", "image", "label", "type", "weight", "organ"}
        return LabeledImage(
            image,
            label,
            str(entry["id"]),
            organ=str(entry.get("organ", UNKNOWN_ORGAN)),
            source=str(image_path),
            weight=float(entry.get("weight", 1.0)),
            is_synthetic=True,
            type_map=type_map,
            meta={k: v for k, v in entry.items() if k not in reserved},
        )


def update_weights(root: str | Path, weights: dict[str, float]) -> None:
    """Set per-sample importance weights in the manifest (rewritten atomically)."""
    root = Path(root)
    entries = _read_manifest(root, repair=False)
    unknown = set(weights) - {str(e["id"]) for e in entries}
    if unknown:
        raise DataError(f"{root / MANIFEST}: no samples with ids {sorted(unknown)[:5]}")
    for entry in entries:
        if str(entry["id"]) in weights:
            entry["weight"] = float(weights[str(entry["id"])])
    text = "".join(json.dumps(e) + "\n" for e in entries)
    _atomic_write_bytes(root / MANIFEST, text.encode())
