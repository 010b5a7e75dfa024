"""``histo-gan synthesize``: write an initial synthetic dataset from real tissue images.

    histo-gan synthesize --source DIR --out DIR --n 1000 --size 256 --method hou --workers 4

Methods: ``hou`` (random polygons, Hou et al. 2017/2019), ``mahmood`` (dictionary of real
nucleus shapes, Mahmood et al. 2019; needs ``--masks``), ``centroids`` (DAFF-GAN stage-1
centroid-point maps of randomised real masks; needs ``--masks``). The same ``--seed`` gives
byte-identical files for any ``--workers``; an interrupted run resumes where it stopped.

The dataset records what made it (method, seed, size, n and the content of the source files).
Running again with the same arguments resumes it; with other arguments it is refused, unless
``--overwrite`` (replace it) or ``--extend`` (a larger ``--n``, all else equal: sample ``k``
depends only on ``(seed, k)``, so the result equals a run made with the larger ``--n``).
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing
import os
import sys
from contextlib import contextmanager, nullcontext
from pathlib import Path

from histo_gan.data.sources import ImageFolder
from histo_gan.data.synthetic import (
    GRID,
    DatasetMismatch,
    EncodedSample,
    SyntheticDatasetWriter,
    encode_sample,
    read_header,
)
from histo_gan.readers import LABEL_SUFFIXES, DataError, read_image, read_label_map
from histo_gan.synthesis.grid import write_sample_grid
from histo_gan.synthesis.masks import (
    CentroidMapGenerator,
    NucleusShapeDictionary,
    RandomPolygonMasks,
)
from histo_gan.synthesis.pipeline import CentroidSynthesis, InitialSynthesis, Synthesis
from histo_gan.threads import limit_threads, threads_limited

__all__ = ["build_synthesis", "main"]

MASK_FOLDER_NAMES = ("instance_masks", "labels", "Labels", "masks")

# Smaller patches are mostly empty. On the bundled sample (200 samples per size), the share of
# patches without a nucleus is 72/64/77 % at 8 px (hou/mahmood/centroids), 40/10/46 % at 16,
# 23/0/23 % at 24, 7/0/11 % at 32 and <= 4 % at 48.
MIN_SIZE = 32
METHODS_WITH_MASKS = ("mahmood", "centroids")
# Threads that write the files: a disk flush (fsync) per file is slow alone, fast in parallel.
WRITE_THREADS = 4


def _masks_dir(args) -> Path:
    if args.masks is not None:
        return args.masks
    for name in MASK_FOLDER_NAMES:
        candidate = args.source.parent / name
        if candidate.is_dir():
            return candidate
    raise DataError(
        f"{args.source}: --method {args.method} needs real label maps; pass --masks DIR "
        f"(looked for {', '.join(MASK_FOLDER_NAMES)} beside the source folder)"
    )


def _load_images(source: Path):
    from rich.progress import track

    folder = ImageFolder(source)
    return [
        folder.load(i)
        for i in track(range(len(folder)), description="reading sources", transient=True)
    ]


# Each method: how to build its synthesis from the parsed arguments (defaults of the papers).
METHODS = {
    "hou": lambda a: InitialSynthesis(
        _load_images(a.source), RandomPolygonMasks(), a.size, a.seed, method="hou"
    ),
    "mahmood": lambda a: InitialSynthesis(
        _load_images(a.source),
        NucleusShapeDictionary(_masks_dir(a)),
        a.size,
        a.seed,
        method="mahmood",
    ),
    "centroids": lambda a: CentroidSynthesis(CentroidMapGenerator(_masks_dir(a)), a.size, a.seed),
}


def build_synthesis(args) -> Synthesis:
    return METHODS[args.method](args)


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


# The synthesis of a worker process: inherited through fork with the tiles the parent has, so
# that sources are read and analysed once, not once per worker.
_worker_synthesis: Synthesis | None = None


def _init_worker(synthesis: Synthesis) -> None:
    global _worker_synthesis
    _worker_synthesis = synthesis
    limit_threads(1)  # the workers share the cores: no OpenCV or BLAS pool of its own in each


def _worker_tile(index: int):
    assert _worker_synthesis is not None
    return index, _worker_synthesis.make_tile(index)


def _encoded(synthesis: Synthesis, index: int) -> EncodedSample:
    image, label, meta = synthesis.sample(index)
    return encode_sample(f"{index:06d}", image, label, meta)


def _worker_sample(index: int) -> EncodedSample:
    assert _worker_synthesis is not None
    return _encoded(_worker_synthesis, index)


@contextmanager
def _workers(count: int, synthesis: Synthesis):
    """``count`` forked processes that hold ``synthesis`` as it is now (terminated on exit)."""
    pool = multiprocessing.get_context("fork").Pool(
        count, initializer=_init_worker, initargs=(synthesis,)
    )
    try:
        yield pool
    finally:
        pool.terminate()
        pool.join()


def _parse(argv):
    parser = argparse.ArgumentParser(
        prog="histo-gan synthesize", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--source", type=Path, required=True, help="folder of real tissue images")
    parser.add_argument("--out", type=Path, required=True, help="synthetic dataset folder")
    parser.add_argument("--n", type=int, required=True, help="number of samples")
    parser.add_argument("--size", type=int, default=256, help="patch side in pixels")
    parser.add_argument("--method", choices=sorted(METHODS), default="hou")
    parser.add_argument(
        "--masks", type=Path, default=None, help="real label maps (mahmood, centroids)"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help=f"worker processes (default: the cores available, here {available_cores()})",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--grid", type=int, default=16, help="samples in the sample grid (0: none)")
    existing = parser.add_mutually_exclusive_group()
    existing.add_argument(
        "--overwrite", action="store_true", help="replace a dataset made with other arguments"
    )
    existing.add_argument(
        "--extend",
        action="store_true",
        help="add samples to a dataset (a larger --n, all else equal)",
    )
    args = parser.parse_args(argv)
    if args.workers is None:
        args.workers = available_cores()
    if args.n <= 0:
        raise ValueError(f"--n must be a positive number of samples, got {args.n}")
    if args.size < MIN_SIZE:
        raise ValueError(
            f"--size {args.size} is below the minimum of {MIN_SIZE} px: smaller patches hold "
            "hardly a nucleus (most are empty at 8 px)"
        )
    if args.workers <= 0:
        raise ValueError(f"--workers must be at least 1, got {args.workers}")
    return args


def _file_digests(folder: Path, files) -> dict:
    """What a source folder contributes: its path and the content hash of each file."""
    return {
        "folder": str(folder.resolve()),
        "files": {p.name: hashlib.sha256(p.read_bytes()).hexdigest()[:16] for p in files},
    }


def dataset_metadata(args) -> dict:
    """Everything that determines the dataset's content, as recorded in ``dataset.json``."""
    metadata = {
        "method": args.method,
        "seed": args.seed,
        "size": args.size,
        "n": args.n,
        "source": _file_digests(args.source, ImageFolder(args.source).image_files),
    }
    if args.method in METHODS_WITH_MASKS:
        masks = _masks_dir(args)
        files = sorted(p for p in masks.glob("*") if p.suffix.lower() in LABEL_SUFFIXES)
        metadata["masks"] = _file_digests(masks, files)
    recorded = read_header(args.out) if args.out.is_dir() else None
    for key in ("source", "masks"):
        # the same files in another place (a moved folder, a relative path) are the same input
        old = (recorded or {}).get(key)
        if key in metadata and isinstance(old, dict) and old.get("files") == metadata[key]["files"]:
            metadata[key] = old
    return metadata


def _file_changes(old: dict, new: dict) -> str:
    old, new = old.get("files", {}), new.get("files", {})
    changes = [f"{name} changed" for name in sorted(set(old) & set(new)) if old[name] != new[name]]
    changes += [f"{name} added" for name in sorted(set(new) - set(old))]
    changes += [f"{name} removed" for name in sorted(set(old) - set(new))]
    return ", ".join(changes[:4]) + (f" and {len(changes) - 4} more" if len(changes) > 4 else "")


def _mismatch_message(args, error: DatasetMismatch) -> str:
    described = []
    for key, (old, new) in error.differences.items():
        if isinstance(old, dict) and isinstance(new, dict):
            described.append(f"--{key}: {_file_changes(old, new)}")
        else:
            described.append(f"--{key} {old} (now {new})")
    remedy = "run with the recorded arguments to resume it, or pass --overwrite to replace it"
    if set(error.differences) == {"n"} and error.differences["n"][1] > error.differences["n"][0]:
        remedy += ", or --extend to add the samples"
    elif args.extend:
        remedy = "--extend only adds samples (a larger --n); " + remedy
    return (
        f"{args.out}: the dataset was made with other arguments: {'; '.join(described)}. {remedy}"
    )


def _write_grid(writer: SyntheticDatasetWriter, count: int) -> Path | None:
    """The sample grid of the first ``count`` samples, read back so that it never depends on
    where an interrupted run resumed."""
    entries = [writer.entries[i] for i in sorted(writer.entries)[:count]]
    if not entries:
        return None
    images = [read_image(writer.root / e["image"]) for e in entries]
    labels = [read_label_map(writer.root / e["label"]) for e in entries]
    return write_sample_grid(writer.root / GRID, images, labels)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    synthesis = build_synthesis(args)  # validates sources and sizes before anything is written
    metadata = dataset_metadata(args)
    grow = ("n",) if args.extend else ()
    try:
        with SyntheticDatasetWriter(
            args.out, metadata, overwrite=args.overwrite, grow=grow
        ) as writer:
            grid = _synthesize_into(writer, synthesis, args)
    except DatasetMismatch as error:
        raise DataError(_mismatch_message(args, error)) from error
    if grid is not None:
        print(f"sample grid: {grid}")
    print(f"{args.out}: {args.n} samples ({args.method}, seed {args.seed})")
    return 0


def _synthesize_into(writer: SyntheticDatasetWriter, synthesis: Synthesis, args) -> Path | None:
    """Write the samples ``writer`` lacks, then the sample grid; returns the grid's path."""
    from rich.progress import Progress

    if writer.previous_holder:
        holder = writer.previous_holder
        print(
            f"{args.out}: took over the lock of pid {holder['pid']} on {holder['host']}, "
            "which stopped without releasing it"
        )
    if writer.repaired:
        print(f"{args.out}: repaired: {'; '.join(writer.repaired)}")
    todo = [i for i in range(args.n) if f"{i:06d}" not in writer.completed_ids]
    if todo:
        # Forked workers need this process single-threaded (see threads_limited).
        budget = threads_limited(1) if args.workers > 1 else nullcontext()
        with budget, Progress() as progress:
            _prepare(synthesis, args.workers, progress)
            task = progress.add_task(
                f"synthesising ({args.method})", total=args.n, completed=args.n - len(todo)
            )
            _write_samples(
                writer, synthesis, todo, args.workers, lambda k: progress.advance(task, k)
            )
    return _write_grid(writer, args.grid) if args.grid > 0 else None


def _prepare(synthesis: Synthesis, workers: int, progress) -> None:
    """Analyse the source tiles once, spread over the workers, with a progress bar."""
    pending = synthesis.pending_tiles()
    if not pending:
        return
    task = progress.add_task("preparing source tiles", total=len(pending))
    if workers == 1:
        synthesis.prepare(lambda: progress.advance(task))
    else:
        with _workers(min(workers, len(pending)), synthesis) as pool:
            for index, tile in pool.imap_unordered(_worker_tile, pending):
                synthesis.set_tile(index, tile)
                progress.advance(task)
    progress.remove_task(task)


def _write_samples(writer, synthesis: Synthesis, todo: list[int], workers: int, added) -> None:
    """Sample (and encode) in ``workers`` processes forked after the preparation, so that they
    share the prepared tiles; this process writes the files, several at a time."""
    if workers == 1:
        writer.add_all((_encoded(synthesis, i) for i in todo), threads=WRITE_THREADS, added=added)
        return
    with _workers(workers, synthesis) as pool:
        samples = pool.imap(_worker_sample, todo, chunksize=4)
        writer.add_all(samples, threads=WRITE_THREADS, added=added)


if __name__ == "__main__":
    sys.exit(main())
