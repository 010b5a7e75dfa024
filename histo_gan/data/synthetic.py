"""The synthetic-dataset format: what ``histo-gan synthesize`` and the GAN exports write.

Layout of a dataset folder::

    dataset.json        {"format": "histo-gan-synthetic", "version": 1, ...what made it}
    manifest.jsonl      one JSON object per sample (see below), appended as samples complete
    images/<id>.png     uint8 RGB
    labels/<id>.png     instance label map: 16-bit PNG, or labels/<id>.tif (int32) for ids >= 2**16
    types/<id>.png      optional type map (16-bit PNG)
    sample_grid.png     optional picture of the first samples (``histo-gan synthesize``)
    .lock               only while a writer has the folder open (see :mod:`.dataset_lock`)

A manifest line: ``{"id", "image", "label", "weight", ...meta}`` with paths relative to the
folder; ``meta`` typically holds ``seed``, ``source_ids``, ``method`` and ``organ``.

``dataset.json`` records what made the dataset (the writer's ``metadata``: for ``synthesize``
every argument that determines the content, and the identity of the source files). A writer
that reopens the folder with other metadata is refused with the differences, unless it asks to
overwrite the dataset or to let a key grow (a larger ``n``).

One writer at a time: a writer holds the folder's lock (a second one is refused at once,
naming the holder; the lock of a killed writer is taken over). Writes are atomic: every file
goes to a temporary name in its folder and is renamed into place; a manifest line is appended
(and fsync'd) only after the sample's files exist. A crash leaves at most orphan files and a
torn last manifest line; reopening the writer repairs the manifest (also after worse damage:
duplicate ids, listed files missing, garbage lines), removes temporaries and orphans, and
:attr:`SyntheticDatasetWriter.completed_ids` tells an export which samples to skip. Readers
refuse a damaged dataset with the list of problems. No torch here.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
import warnings
from collections import Counter, deque
from collections.abc import Callable, Collection, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import tifffile

from histo_gan.data.dataset_lock import DatasetLock, DatasetLocked
from histo_gan.readers import DataError, read_image, read_label_map
from histo_gan.types import UNKNOWN_ORGAN, LabeledImage, validate_image, validate_label_map

__all__ = [
    "FORMAT",
    "DatasetLocked",
    "DatasetMismatch",
    "EncodedSample",
    "SyntheticDataset",
    "SyntheticDatasetWriter",
    "encode_sample",
    "read_header",
    "repair",
    "update_weights",
]

FORMAT = {"format": "histo-gan-synthetic", "version": 1}
MANIFEST = "manifest.jsonl"
HEADER = "dataset.json"
GRID = "sample_grid.png"
FOLDERS = ("images", "labels", "types")
TEMPORARY = ".tmp-"


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=TEMPORARY, delete=False) as f:
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


@dataclass(frozen=True)
class EncodedSample:
    """One sample ready to be written: its files' bytes by relative path, and its manifest line."""

    sample_id: str
    files: dict[str, bytes]
    entry: dict


def encode_sample(
    sample_id: str,
    image: np.ndarray,
    label: np.ndarray,
    meta: dict | None = None,
    weight: float | None = None,
    type_map: np.ndarray | None = None,
) -> EncodedSample:
    """Validate and encode one sample (PNG/TIFF bytes); pure, so worker processes can do it.

    ``image`` ``uint8`` ``(H, W, 3)``, ``label`` integer ``(H, W)``, optional ``type_map``.
    """
    if not sample_id or "/" in sample_id or sample_id.startswith("."):
        raise ValueError(f"invalid sample id {sample_id!r}")
    validate_image(image, sample_id)
    label = validate_label_map(label, sample_id)
    if label.shape != image.shape[:2]:
        raise ValueError(f"{sample_id}: label {label.shape} and image {image.shape[:2]} differ")
    where = Path(sample_id)
    image_path = f"images/{sample_id}.png"
    if label.max(initial=0) < 2**16:
        label_path, label_bytes = (
            f"labels/{sample_id}.png",
            _encode_png(label.astype(np.uint16), where),
        )
    else:
        label_path, label_bytes = f"labels/{sample_id}.tif", _encode_tiff(label)
    files = {image_path: _encode_png(image, where), label_path: label_bytes}
    entry = {"id": sample_id, "image": image_path, "label": label_path}
    if type_map is not None:
        type_path = f"types/{sample_id}.png"
        files[type_path] = _encode_png(type_map.astype(np.uint16), where)
        entry["type"] = type_path
    entry["weight"] = 1.0 if weight is None else float(weight)
    entry.update(meta or {})
    return EncodedSample(sample_id, files, entry)


class DatasetMismatch(DataError):
    """The dataset was made with other metadata. ``differences``: key -> (recorded, asked)."""

    def __init__(self, message: str, differences: dict[str, tuple]) -> None:
        super().__init__(message)
        self.differences = differences


def read_header(root: str | Path) -> dict | None:
    """The contents of ``<root>/dataset.json``, or ``None`` when there is none."""
    path = Path(root) / HEADER
    if not path.is_file():
        return None
    try:
        header = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise DataError(f"{path}: unreadable dataset header ({error})") from error
    if not isinstance(header, dict) or header.get("format") != FORMAT["format"]:
        raise DataError(f"{path}: not a histo-gan synthetic dataset header")
    return header


@dataclass
class ManifestCheck:
    """What :func:`check_manifest` found.

    Attributes:
        entries: the usable entries, in manifest order.
        problems: damage a reader must not ignore (one line each).
        torn_tail: the last line is unterminated (a writer died or is appending).
    """

    entries: list[dict] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    torn_tail: bool = False


def check_manifest(root: Path) -> ManifestCheck:
    """Parse the manifest and find its damage: bad lines, duplicate ids, missing files.

    Every entry of a duplicated id is unusable: which of them (if any) matches the files on
    disk cannot be told.
    """
    check = ManifestCheck()
    path = root / MANIFEST
    data = path.read_bytes() if path.exists() else b""
    check.torn_tail = bool(data) and not data.endswith(b"\n")
    complete = data[: data.rfind(b"\n") + 1]
    parsed: list[tuple[int, dict]] = []
    for number, line in enumerate(complete.decode("utf-8", "replace").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as error:
            check.problems.append(f"line {number} is not valid JSON ({error.msg})")
            continue
        if not isinstance(entry, dict) or not {"id", "image", "label"} <= set(entry):
            check.problems.append(f"line {number} lacks 'id', 'image' or 'label'")
            continue
        parsed.append((number, entry))
    counts = Counter(str(entry["id"]) for _, entry in parsed)
    for sample_id, count in counts.items():
        if count > 1:
            lines = [n for n, e in parsed if str(e["id"]) == sample_id]
            check.problems.append(f"sample {sample_id!r} is listed {count} times (lines {lines})")
    for _, entry in parsed:
        if counts[str(entry["id"])] > 1:
            continue
        missing = [
            entry[k]
            for k in ("image", "label", "type")
            if k in entry and not (root / entry[k]).is_file()
        ]
        check.problems.extend(f"{name} is listed but missing" for name in missing)
        if not missing:
            check.entries.append(entry)
    return check


class SyntheticDatasetWriter:
    """Append samples to a synthetic dataset folder, atomically, resumably, alone.

    Use as a context manager. Opening takes the folder's lock (:class:`DatasetLocked` if
    another writer has it). An existing dataset is resumed when its header records the same
    ``metadata``; otherwise :class:`DatasetMismatch` names the differences, unless
    ``overwrite``. Resuming repairs the dataset first; samples in the manifest are listed in
    :attr:`completed_ids`. A folder that holds files in ``images/``, ``labels/`` or
    ``types/`` but no ``dataset.json`` is refused, never cleaned.

    Args:
        root: the dataset folder (created if missing).
        metadata: what makes the dataset (method, seed, size, sources, ...), stored in
            ``dataset.json`` and compared on reopening; ``None`` accepts the existing header.
        overwrite: replace an existing dataset (its samples are deleted).
        grow: numeric metadata keys that may increase on reopening (``{"n"}`` to extend a
            dataset whose sample ``k`` does not depend on ``n``); the header is updated.

    Attributes:
        completed_ids: ids already in the dataset.
        repaired: the damage found (and repaired) on opening, one line per problem.
        previous_holder: the lock holder that died without releasing it, or ``None``.
    """

    def __init__(
        self,
        root: str | Path,
        metadata: dict | None = None,
        *,
        overwrite: bool = False,
        grow: Collection[str] = (),
    ) -> None:
        self.root = Path(root)
        self.metadata = None if metadata is None else dict(metadata)
        self.overwrite, self.grow = overwrite, set(grow)
        self.completed_ids: set[str] = set()
        self.entries: dict[str, dict] = {}
        self.repaired: list[str] = []
        self.previous_holder: dict | None = None
        self._lock: DatasetLock | None = None
        self._manifest = None

    def __enter__(self) -> SyntheticDatasetWriter:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            self._lock = DatasetLock(self.root).acquire()
            self.previous_holder = self._lock.previous_holder
            self._open()
        except BaseException as error:
            self.__exit__(None, None, None)
            if isinstance(error, OSError):
                raise DataError(
                    f"{self.root}: cannot write the dataset here ({error.strerror}: "
                    f"{error.filename})"
                ) from error
            raise
        return self

    def _open(self) -> None:
        header = read_header(self.root)
        if header is None:
            self._refuse_foreign_files()
        elif self.overwrite:
            _atomic_write_bytes(self.root / MANIFEST, b"")  # first: samples stop counting
            (self.root / GRID).unlink(missing_ok=True)
        if header is None or self.overwrite or self._grows(header):
            new = {**FORMAT, **(self.metadata or {})}
            _atomic_write_bytes(self.root / HEADER, json.dumps(new, indent=2).encode())
        for folder in FOLDERS:
            (self.root / folder).mkdir(exist_ok=True)
        check = check_manifest(self.root)
        if check.problems or check.torn_tail:
            text = "".join(json.dumps(e) + "\n" for e in check.entries)
            _atomic_write_bytes(self.root / MANIFEST, text.encode())
        self.repaired = check.problems
        self.entries = {str(e["id"]): e for e in check.entries}
        self.completed_ids = set(self.entries)
        self._remove_leftovers()
        self._manifest = open(self.root / MANIFEST, "a", encoding="utf-8")

    def _refuse_foreign_files(self) -> None:
        for folder in FOLDERS:
            path = self.root / folder
            if path.is_dir() and any(not p.name.startswith(TEMPORARY) for p in path.iterdir()):
                raise DataError(
                    f"{self.root}: not a histo-gan synthetic dataset (no {HEADER}) but {folder}/ "
                    "holds files; choose a new or empty folder"
                )

    def _grows(self, header: dict) -> bool:
        """Whether the header needs rewriting for keys that grew; refuse other differences."""
        if self.metadata is None:
            return False
        recorded = {k: v for k, v in header.items() if k not in FORMAT}
        differences = {
            key: (recorded.get(key), self.metadata.get(key))
            for key in sorted(set(recorded) | set(self.metadata))
            if recorded.get(key) != self.metadata.get(key)
        }
        grown = {
            key
            for key, (old, new) in differences.items()
            if key in self.grow
            and isinstance(old, int | float)
            and isinstance(new, int | float)
            and new >= old
        }
        refused = {k: v for k, v in differences.items() if k not in grown}
        if refused:
            listed = "; ".join(
                f"{k}: {_short(old)} -> {_short(new)}" for k, (old, new) in refused.items()
            )
            raise DatasetMismatch(
                f"{self.root / HEADER}: the dataset was made with other settings ({listed}); "
                "open it with the recorded ones to resume, or overwrite it",
                refused,
            )
        return bool(grown)

    def _remove_leftovers(self) -> None:
        """Delete temporaries and the files of samples that are not in the manifest."""
        referenced = {
            e[k] for e in self.entries.values() for k in ("image", "label", "type") if k in e
        }
        for folder in FOLDERS:
            for path in (self.root / folder).iterdir():
                if f"{folder}/{path.name}" not in referenced:
                    path.unlink()
        for path in self.root.glob(f"{TEMPORARY}*"):
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
        self._require_open()
        sample = encode_sample(sample_id, image, label, meta, weight, type_map)
        self._require_new(sample.sample_id)
        self._write_files(sample)
        self._append([sample])

    def add_all(
        self,
        samples: Iterable[EncodedSample],
        threads: int = 4,
        added: Callable[[int], None] | None = None,
    ) -> None:
        """Write samples made by :func:`encode_sample` (e.g. in worker processes).

        ``threads`` threads write the files (each atomically and fsync'd), so that the disk's
        flushes overlap; manifest lines are appended in the order of ``samples``, each only
        after its sample's files exist, with one manifest fsync per batch of finished samples.
        ``added(k)`` is called after each batch with the number of samples it committed. An
        error or an interrupt leaves at most files without a manifest line (removed when the
        dataset is reopened).
        """
        self._require_open()
        limit = 4 * max(1, threads)
        pending: deque[tuple[EncodedSample, Future]] = deque()
        queued: set[str] = set()
        with ThreadPoolExecutor(max(1, threads)) as pool:
            try:
                for sample in samples:
                    self._require_new(sample.sample_id, queued)
                    queued.add(sample.sample_id)
                    pending.append((sample, pool.submit(self._write_files, sample)))
                    if len(pending) > limit:
                        pending[0][1].result()
                    self._append(_finished_head(pending), added)
                while pending:
                    pending[0][1].result()
                    self._append(_finished_head(pending), added)
            finally:
                for _, future in pending:
                    future.cancel()

    def _require_open(self) -> None:
        if self._manifest is None:
            raise RuntimeError("use SyntheticDatasetWriter as a context manager")

    def _require_new(self, sample_id: str, queued: Collection[str] = ()) -> None:
        if sample_id in self.completed_ids or sample_id in queued:
            raise DataError(f"{self.root}: sample {sample_id!r} is already in the dataset")

    def _write_files(self, sample: EncodedSample) -> None:
        for path, data in sample.files.items():
            _atomic_write_bytes(self.root / path, data)

    def _append(self, samples: list[EncodedSample], added=None) -> None:
        """Append the manifest lines of samples whose files are written; one fsync."""
        if not samples:
            return
        for sample in samples:
            self._manifest.write(json.dumps(sample.entry) + "\n")
        self._manifest.flush()
        os.fsync(self._manifest.fileno())
        for sample in samples:
            self.completed_ids.add(sample.sample_id)
            self.entries[sample.sample_id] = sample.entry
        if added is not None:
            added(len(samples))

    def __exit__(self, *exc_info) -> None:
        if self._manifest is not None:
            self._manifest.close()
            self._manifest = None
        if self._lock is not None:
            self._lock.release()
            self._lock = None


def _finished_head(pending: deque) -> list[EncodedSample]:
    """Pop the samples at the head of ``pending`` whose files are written (raises a failed write)."""
    finished = []
    while pending and pending[0][1].done():
        sample, future = pending.popleft()
        future.result()
        finished.append(sample)
    return finished


def _short(value) -> str:
    return "{...}" if isinstance(value, dict | list) else repr(value)


def repair(root: str | Path) -> list[str]:
    """Repair a damaged dataset in place (takes the lock); returns the problems it removed.

    Samples whose manifest record is unusable (duplicated, unparsable, files missing) are
    removed with their files; a re-run of the command that wrote the dataset makes them again.
    """
    if read_header(root) is None:
        raise DataError(f"{Path(root) / HEADER}: missing; is {root} a histo-gan synthetic dataset?")
    with SyntheticDatasetWriter(root) as writer:
        return writer.repaired


class SyntheticDataset:
    """Read a synthetic dataset: ``dataset[i]`` is a :class:`~histo_gan.types.LabeledImage`.

    Raises :class:`DataError` naming the folder for a missing folder, header or manifest, an
    empty dataset, and every kind of damage (unparsable lines, duplicate ids, listed files
    missing), with the remedy. What an interrupted writer leaves (a torn last line, files not
    in the manifest) is not part of the dataset and is ignored; a dataset with fewer samples
    than its header's ``n`` is read with a warning.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise DataError(f"{self.root}: synthetic dataset folder does not exist")
        header = read_header(self.root)
        if header is None:
            raise DataError(
                f"{self.root / HEADER}: missing; is {self.root} a histo-gan synthetic dataset?"
            )
        self.header = header
        if not (self.root / MANIFEST).is_file():
            raise DataError(f"{self.root / MANIFEST}: missing manifest")
        check = check_manifest(self.root)
        if check.problems:
            more = len(check.problems) - 5
            listed = "; ".join(check.problems[:5]) + (f"; and {more} more" if more > 0 else "")
            raise DataError(
                f"{self.root}: damaged synthetic dataset ({MANIFEST}: {listed}). Repair it with "
                "SyntheticFolder(root, repair=True) (drops the damaged samples) or by running "
                "the command that wrote it again"
            )
        self.manifest = check.entries
        if not self.manifest:
            raise DataError(f"{self.root / MANIFEST}: the dataset has no samples")
        wanted = header.get("n")
        if isinstance(wanted, int) and len(self.manifest) < wanted:
            warnings.warn(
                f"{self.root}: {len(self.manifest)} of the {wanted} samples in {HEADER} are "
                "written (an interrupted or running writer); reading those",
                UserWarning,
                stacklevel=2,
            )

    def __len__(self) -> int:
        return len(self.manifest)

    def fingerprint(self) -> str:
        """What the samples are, as 16 hex digits: SHA-256 over every manifest entry (keys
        sorted) and the bytes of the files it lists (image, label, type), in manifest order.

        Two folders with one fingerprint hold the same samples. A set exported again by a
        generator trained again (another machine's kernels round differently, and GAN training
        amplifies that) gets another: runs record it so that a report can tell seeds trained
        on one export from seeds trained on several.
        """
        digest = hashlib.sha256()
        for entry in self.manifest:
            digest.update(json.dumps(entry, sort_keys=True).encode())
            for key in ("image", "label", "type"):
                if key in entry:
                    digest.update((self.root / entry[key]).read_bytes())
        return digest.hexdigest()[:16]

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
    with DatasetLock(root):
        _update_weights(root, weights)


def _update_weights(root: Path, weights: dict[str, float]) -> None:
    check = check_manifest(root)
    if check.problems:
        raise DataError(f"{root / MANIFEST}: damaged ({check.problems[0]}); repair it first")
    entries = check.entries
    unknown = set(weights) - {str(e["id"]) for e in entries}
    if unknown:
        raise DataError(f"{root / MANIFEST}: no samples with ids {sorted(unknown)[:5]}")
    for entry in entries:
        if str(entry["id"]) in weights:
            entry["weight"] = float(weights[str(entry["id"])])
    text = "".join(json.dumps(e) + "\n" for e in entries)
    _atomic_write_bytes(root / MANIFEST, text.encode())
