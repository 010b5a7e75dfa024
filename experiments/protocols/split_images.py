"""A folder of symlinks to the training images of a split: the ``--source`` of synthesis.

Synthetic data of a protocol is made from its split's training images only, never from its
validation or test images:

    python experiments/protocols/split_images.py experiments/splits/main.json \
        ../shared/data/monuseg/train/images runs/protocols/sources/main
    histo-gan synthesize --source runs/protocols/sources/main --out ... --method hou
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def link_train_images(split: Path, images: Path, out: Path) -> list[Path]:
    """Symlink ``out/<file>`` -> ``images/<file>`` for every training image id of ``split``."""
    train = json.loads(split.read_text())["train"]
    by_stem = {p.stem: p for p in images.iterdir() if p.is_file()}
    missing = sorted(set(train) - set(by_stem))
    if missing:
        raise ValueError(f"{split}: training images not in {images}: {missing}")
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.iterdir():  # the folder is exactly the split's training images
        if stale.is_symlink() and stale.stem not in train:
            stale.unlink()
    links = []
    for image_id in train:
        link = out / by_stem[image_id].name
        if not link.is_symlink():
            link.symlink_to(by_stem[image_id].resolve())
        links.append(link)
    return links


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("split", type=Path, help="split JSON (train/val/test image ids)")
    parser.add_argument("images", type=Path, help="folder of all images")
    parser.add_argument("out", type=Path, help="folder of links to write")
    args = parser.parse_args(argv)
    links = link_train_images(args.split, args.images, args.out)
    print(f"{args.out}: {len(links)} training images of {args.split}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
