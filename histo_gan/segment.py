"""``histo-gan segment``: label maps (and overlays) for a folder of new images.

A short form of ``histo-gan predict`` with the config of the checkpoint's own run, the
images as ``data.predict_source`` and an :class:`~histo_gan.callbacks.InstanceMapWriter`::

    histo-gan segment --ckpt_path best --name baseline_unet_tiny --images DIR --out DIR --overlays

writes ``DIR/<image id>.png`` (16-bit instance label maps; 32-bit TIFF above 65535 nuclei) and,
with ``--overlays``, ``DIR/overlays/<image id>.png`` (the image with nucleus outlines).

An unreadable image stops the run before anything is written, naming the file. With
``--skip-unreadable`` every image is read once first to check it; the unreadable ones are left
out, listed in ``DIR/unreadable.txt`` (one line each: the file and why) and in the last line
printed, and the others are segmented.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

from histo_gan.cli import main as cli_main
from histo_gan.data.sources import ImageFolder
from histo_gan.readers import DataError, read_image, read_label_map
from histo_gan.runs import CHECKPOINT_ALIASES, find_checkpoint
from histo_gan.synthesis.grid import outline

__all__ = ["find_unreadable", "main", "write_overlays"]

UNREADABLE = "unreadable.txt"


def _checkpoint(value: str, root: Path, name: str | None) -> Path:
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


def find_unreadable(images: Path, out: Path) -> dict[str, str]:
    """File name -> why, for every image in ``images`` that cannot be read; an error (naming
    them) if none can."""
    files = ImageFolder(images).image_files
    unreadable = {}
    for path in files:
        try:
            read_image(path)
        except DataError as error:
            unreadable[path.name] = str(error)
    if len(unreadable) == len(files):
        reasons = list(unreadable.values())
        raise DataError(
            f"{images}: none of the {len(files)} images can be read ({'; '.join(reasons[:3])}"
            f"{'; ...' if len(reasons) > 3 else ''}); nothing written to {out}"
        )
    return unreadable


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="histo-gan segment", description=__doc__.split("\n\n")[0])
    parser.add_argument("--ckpt_path", required=True, help="checkpoint file, or best / last")
    parser.add_argument("--name", help="run name, for --ckpt_path best / last")
    parser.add_argument("--root", type=Path, default=Path("runs"), help="root of the run folders")
    parser.add_argument("--images", type=Path, required=True, help="folder of images")
    parser.add_argument("--out", type=Path, required=True, help="folder for the label maps")
    parser.add_argument("--overlays", action="store_true", help="also write outlined images")
    parser.add_argument(
        "--skip-unreadable",
        action="store_true",
        help=f"leave out images that cannot be read (listed in OUT/{UNREADABLE}) instead of "
        "stopping; reads every image once more to check it",
    )
    args = parser.parse_args(argv)

    checkpoint = _checkpoint(args.ckpt_path, args.root, args.name)
    config = checkpoint.parent.parent / "config.yaml"
    if not config.is_file():
        raise FileNotFoundError(f"{config}: the run of {checkpoint} has no config.yaml")
    skipped = find_unreadable(args.images, args.out) if args.skip_unreadable else {}
    names = sorted(skipped)
    writer = {
        "class_path": "histo_gan.callbacks.InstanceMapWriter",
        "init_args": {"output_dir": str(args.out)},
    }
    command = [
        "predict",
        "--config",
        str(config),
        "--ckpt_path",
        str(checkpoint),
        "--data.predict_source",
        "histo_gan.data.ImageFolder",
        "--data.predict_source.root",
        str(args.images),
        f"--trainer.callbacks={json.dumps([writer])}",
    ]
    if names:
        command.append(f"--data.predict_source.exclude={json.dumps(names)}")
    with warnings.catch_warnings():
        # Not the user's concern: the arguments are this tool's own (Lightning warns when a
        # program passes ``args`` and has command-line arguments), and predicting needs none
        # of the training callbacks stored in the checkpoint.
        warnings.filterwarnings("ignore", message=r".*LightningCLI's args parameter")
        warnings.filterwarnings("ignore", message=r".*callbacks used to create the checkpoint")
        code = cli_main(command)
    if code != 0:
        return code
    if args.overlays:
        count = write_overlays(args.images, args.out, args.out / "overlays")
        print(f"histo-gan segment: {count} overlays in {args.out / 'overlays'}")
    listing = args.out / UNREADABLE
    listing.unlink(missing_ok=True)  # a list from an earlier run would be wrong now
    if skipped:
        listing.write_text("".join(f"{skipped[name]}\n" for name in names))
        shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        print(
            f"histo-gan segment: skipped {len(names)} unreadable image"
            f"{'s' if len(names) > 1 else ''} (listed in {listing}): {shown}",
            file=sys.stderr,
        )
    return 0
