"""Two-process ``predict``: every image is segmented and written exactly once, padding never."""

from __future__ import annotations

import shutil
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch

from histo_gan.callbacks import InstanceMapWriter
from histo_gan.data import HistoDataModule, ImageFolder
from histo_gan.data.readers import read_label_map
from histo_gan.data.sources import bundled_sample_dir
from histo_gan.inference import SlidingWindow
from histo_gan.modules import SegmenterModule
from histo_gan.networks import SmpUnet


class RecordingWriter(InstanceMapWriter):
    """Writes label maps and appends every written id to ``written_rank<R>.txt``."""

    def write_on_batch_end(self, trainer, pl_module, prediction, *args, **kwargs) -> None:
        super().write_on_batch_end(trainer, pl_module, prediction, *args, **kwargs)
        if not prediction["is_padding"]:
            with open(self.output_dir / f"written_rank{trainer.global_rank}.txt", "a") as log:
                log.write(prediction["image_id"] + "\n")


def tiny_segmenter() -> SegmenterModule:
    torch.manual_seed(0)
    network = SmpUnet("resnet18", encoder_depth=3, decoder_channels=(16, 8, 4))
    return SegmenterModule(network, sliding_window=SlidingWindow(64, 0.25, 4))


def predict(out: Path, images: Path, devices: int) -> None:
    module = tiny_segmenter()
    trainer = L.Trainer(
        accelerator="cpu",
        devices=devices,
        logger=False,
        default_root_dir=out,
        strategy="ddp_spawn" if devices > 1 else "auto",
        enable_progress_bar=False,
        callbacks=[RecordingWriter(out)],
    )
    trainer.predict(
        module, HistoDataModule(predict_source=ImageFolder(images)), return_predictions=False
    )


@pytest.mark.slow
def test_two_process_predict_writes_each_image_once_and_no_padding(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    for path in sorted((bundled_sample_dir() / "images").iterdir())[:3]:  # 3 images, 2 ranks
        shutil.copy(path, images / path.name)
    ids = sorted(p.stem for p in images.iterdir())

    predict(tmp_path / "two", images, devices=2)
    predict(tmp_path / "one", images, devices=1)

    written = []
    for log in sorted((tmp_path / "two").glob("written_rank*.txt")):
        written += log.read_text().split()
    assert sorted(written) == ids  # each image once; rank 1's padding item is not written
    assert len(list((tmp_path / "two").glob("written_rank*.txt"))) == 2
    for image_id in ids:
        two = read_label_map(tmp_path / "two" / f"{image_id}.png")
        one = read_label_map(tmp_path / "one" / f"{image_id}.png")
        assert np.array_equal(two, one), image_id
