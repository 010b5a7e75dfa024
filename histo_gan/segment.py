"""``histo-gan segment``: label maps (and overlays) for a folder of new images.

A short form of ``histo-gan predict`` with the config of the checkpoint's own run, the
images as ``data.predict_source`` and an :class:`~histo_gan.callbacks.InstanceMapWriter`::

    histo-gan segment --ckpt_path best --name baseline_unet_tiny --images DIR --out DIR --overlays

writes ``DIR/<image id>.png`` (16-bit instance label maps; 32-bit TIFF above 65535 nuclei) and,
with ``--overlays``, ``DIR/overlays/<image id>.png`` (the image with nucleus outlines).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

__all__ = ["main"]


def _checkpoint(value: str, root: Path, name: str | None) -> Path:
    from histo_gan.runs import CHECKPOINT_ALIASES, find_checkpoint

    if value in CHECKPOINT_ALIASES:
        if not name:
            raise ValueError(f"--ckpt_path {value} needs --name (the run name)")
        found = find_checkpoint(root, name, value)
        if found is None:
            raise FileNotFoundError(f"no {value}.ckpt in {root / name}/version_*/checkpoints")
        return found
    path = Path(value)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint does not exist")
    return path


def write_overlays(images: Path, labels: Path, out: Path) -> int:
    """Draw the outlines of ``labels/<id>.*`` onto ``images/<id>.*``; returns the count."""
    import cv2

    from histo_gan.data.readers import read_image, read_label_map
    from histo_gan.synthesis.grid import outline

    sources = {p.stem: p for p in images.iterdir() if p.is_file()}
    out.mkdir(parents=True, exist_ok=True)
    count = 0
    for label_file in sorted(p for p in labels.iterdir() if p.suffix in (".png", ".tif")):
        if label_file.stem not in sources:
            continue
        image = outline(read_image(sources[label_file.stem]), read_label_map(label_file))
        cv2.imwrite(str(out / f"{label_file.stem}.png"), image[..., ::-1])
        count += 1
    return count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="histo-gan segment", description=__doc__.split("\n\n")[0])
    parser.add_argument("--ckpt_path", required=True, help="checkpoint file, or best / last")
    parser.add_argument("--name", help="run name, for --ckpt_path best / last")
    parser.add_argument("--root", type=Path, default=Path("runs"), help="root of the run folders")
    parser.add_argument("--images", type=Path, required=True, help="folder of images")
    parser.add_argument("--out", type=Path, required=True, help="folder for the label maps")
    parser.add_argument("--overlays", action="store_true", help="also write outlined images")
    args = parser.parse_args(argv)

    from histo_gan.cli import main as cli_main

    checkpoint = _checkpoint(args.ckpt_path, args.root, args.name)
    config = checkpoint.parent.parent / "config.yaml"
    if not config.is_file():
        raise FileNotFoundError(f"{config}: the run of {checkpoint} has no config.yaml")
    writer = {
        "class_path": "histo_gan.callbacks.InstanceMapWriter",
        "init_args": {"output_dir": str(args.out)},
    }
    code = cli_main(
        [
            "predict",
            "--config", str(config),
            "--ckpt_path", str(checkpoint),
            "--data.predict_source", "histo_gan.data.ImageFolder",
            "--data.predict_source.root", str(args.images),
            f"--trainer.callbacks={json.dumps([writer])}",
        ]
    )  # fmt: skip
    if code == 0 and args.overlays:
        count = write_overlays(args.images, args.out, args.out / "overlays")
        print(f"histo-gan segment: {count} overlays in {args.out / 'overlays'}")
    return code
