"""``histo-gan synthesize``: write an initial synthetic dataset from real tissue images.

    histo-gan synthesize --source DIR --out DIR --n 1000 --size 256 --method hou --workers 4

Methods: ``hou`` (random polygons, Hou et al. 2017/2019), ``mahmood`` (dictionary of real
nucleus shapes, Mahmood et al. 2019; needs ``--masks``), ``centroids`` (DAFF-GAN stage-1
centroid-point maps of randomised real masks; needs ``--masks``). The same ``--seed`` gives
byte-identical files for any ``--workers``; an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import argparse
import multiprocessing
from pathlib import Path

from histo_gan.data.readers import DataError
from histo_gan.data.sources import ImageFolder
from histo_gan.data.synthetic import SyntheticDatasetWriter
from histo_gan.synthesis.masks import (
    CentroidMapGenerator,
    NucleusShapeDictionary,
    RandomPolygonMasks,
)
from histo_gan.synthesis.pipeline import CentroidSynthesis, InitialSynthesis, Synthesis

__all__ = ["build_synthesis", "main"]

MASK_FOLDER_NAMES = ("instance_masks", "labels", "Labels", "masks")


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


_worker_synthesis: Synthesis | None = None


def _init_worker(synthesis: Synthesis) -> None:
    global _worker_synthesis
    _worker_synthesis = synthesis


def _worker_sample(index: int):
    assert _worker_synthesis is not None
    return index, *_worker_synthesis.sample(index)


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
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--grid", type=int, default=16, help="samples in the sample grid (0: none)")
    args = parser.parse_args(argv)
    if args.n <= 0:
        raise ValueError(f"--n must be a positive number of samples, got {args.n}")
    if args.size <= 0:
        raise ValueError(f"--size must be positive, got {args.size}")
    if args.workers <= 0:
        raise ValueError(f"--workers must be at least 1, got {args.workers}")
    return args


def main(argv: list[str] | None = None) -> int:
    from rich.progress import Progress

    args = _parse(argv)
    synthesis = build_synthesis(args)  # validates sources and sizes before anything is written
    with Progress(transient=True) as progress:
        task = progress.add_task(
            "preparing source tiles", total=len(getattr(synthesis, "images", []))
        )
        synthesis.prepare(lambda: progress.advance(task))
    metadata = {"method": args.method, "seed": args.seed, "size": args.size, "n": args.n,
                "source": str(args.source)}  # fmt: skip
    grid_images, grid_labels = [], []
    with SyntheticDatasetWriter(args.out, metadata) as writer:
        todo = [i for i in range(args.n) if f"{i:06d}" not in writer.completed_ids]
        with Progress() as progress:
            task = progress.add_task(
                f"synthesising ({args.method})", total=args.n, completed=args.n - len(todo)
            )
            if args.workers == 1:
                results = (_sample_here(synthesis, i) for i in todo)
                pool = None
            else:
                context = multiprocessing.get_context("fork")
                pool = context.Pool(args.workers, initializer=_init_worker, initargs=(synthesis,))
                results = pool.imap(_worker_sample, todo, chunksize=4)
            try:
                for index, image, label, meta in results:
                    writer.add(f"{index:06d}", image, label, meta)
                    if len(grid_images) < args.grid:
                        grid_images.append(image)
                        grid_labels.append(label)
                    progress.advance(task)
            finally:
                if pool is not None:
                    pool.terminate()
    if grid_images:
        from histo_gan.synthesis.grid import write_sample_grid

        path = write_sample_grid(args.out / "sample_grid.png", grid_images, grid_labels)
        print(f"sample grid: {path}")
    print(f"{args.out}: {args.n} samples ({args.method}, seed {args.seed})")
    return 0


def _sample_here(synthesis: Synthesis, index: int):
    return index, *synthesis.sample(index)
