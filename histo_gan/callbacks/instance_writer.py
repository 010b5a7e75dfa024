"""Write predicted instance label maps to disk during ``histo-gan predict``."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import cv2
import numpy as np
import tifffile
from lightning.pytorch.callbacks import BasePredictionWriter

from histo_gan.types import SegmentationPrediction

__all__ = ["InstanceMapWriter", "write_label_map"]


def write_label_map(path: Path, label: np.ndarray) -> None:
    """Write an ``int32`` label map atomically: 16-bit PNG when ids fit, else 32-bit TIFF.

    ``path`` names the file without a suffix; the chosen suffix is appended.
    """
    suffix = ".png" if label.max(initial=0) < 2**16 else ".tif"
    target = path.parent / f"{path.name}{suffix}"
    with tempfile.NamedTemporaryFile(dir=target.parent, suffix=suffix, delete=False) as tmp:
        pass
    try:
        if suffix == ".png":
            if not cv2.imwrite(tmp.name, label.astype(np.uint16)):
                raise OSError(f"{target}: could not encode the label map as PNG")
        else:
            tifffile.imwrite(tmp.name, label.astype(np.int32), compression="zlib")
        os.replace(tmp.name, target)
    finally:
        if os.path.exists(tmp.name):
            os.unlink(tmp.name)


class InstanceMapWriter(BasePredictionWriter):
    """Save :class:`~histo_gan.types.SegmentationPrediction` payloads as label maps in ``output_dir``.

    Padding items of a distributed shard (``is_padding``) are skipped, so every image is
    written once, by the process that predicted it.

    The files are named by image id, so ``histo-gan evaluate --pred output_dir --gt <labels>``
    scores them directly.
    """

    def __init__(self, output_dir: str | Path) -> None:
        super().__init__(write_interval="batch")
        self.output_dir = Path(output_dir)

    def write_on_batch_end(
        self,
        trainer,
        pl_module,
        prediction: SegmentationPrediction,
        batch_indices,
        batch,
        batch_idx,
        dataloader_idx=0,
    ) -> None:
        if "instances" not in prediction:
            raise ValueError(
                f"InstanceMapWriter needs segmentation predictions, got keys {sorted(prediction)}: "
                "predict with histo_gan.training.SegmentImages"
            )
        if prediction["is_padding"]:
            return
        self.output_dir.mkdir(parents=True, exist_ok=True)
        write_label_map(self.output_dir / prediction["image_id"], prediction["instances"])
