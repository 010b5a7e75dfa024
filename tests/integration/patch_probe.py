"""A callback for tests: records a digest of every training patch each process trains on."""

from __future__ import annotations

import hashlib
from pathlib import Path

from lightning.pytorch.callbacks import Callback


class PatchProbe(Callback):
    """Append one SHA-1 per training image to ``<out>/rank<global rank>.txt``."""

    def __init__(self, out: str) -> None:
        self.out = Path(out)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        digests = [hashlib.sha1(image.numpy().tobytes()).hexdigest() for image in batch["image"]]
        with open(self.out / f"rank{trainer.global_rank}.txt", "a") as f:
            f.writelines(f"{d}\n" for d in digests)


def read_digests(out: Path) -> dict[str, list[str]]:
    """``{file stem: digests}`` of what a run's probe wrote."""
    return {p.stem: p.read_text().split() for p in sorted(Path(out).glob("rank*.txt"))}


def probe_argument(out: Path) -> str:
    """The ``fit`` argument that adds a :class:`PatchProbe` writing under ``out``."""
    return f"--trainer.callbacks+={{class_path: tests.integration.patch_probe.PatchProbe, init_args: {{out: {out}}}}}"
