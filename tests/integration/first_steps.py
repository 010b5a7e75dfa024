"""Record the losses of the first training batches of a config (for the fixture of
``test_first_step_losses.py``).

:class:`FirstStepLosses` is a callback: it records every ``train/...loss...`` value the module
logs during each of the first ``steps`` training batches, then stops training and writes
``{"batch": [{name: value}, ...]}`` to ``path`` as JSON. The run keeps the config's own budget
(so budget-defined schedules behave as in the real run) and is only cut short.
"""

from __future__ import annotations

import json
from pathlib import Path

import lightning as L
import torch

from histo_gan.cli import main


class FirstStepLosses(L.Callback):
    """Losses logged in each of the first ``steps`` training batches, written to ``path``."""

    def __init__(self, path: str, steps: int = 5) -> None:
        self.path, self.steps = Path(path), steps
        self.batches: list[dict[str, float]] = []
        self._current: dict[str, float] = {}

    def setup(self, trainer, pl_module, stage: str) -> None:
        log = pl_module.log

        def recording_log(name, value, *args, **kwargs):
            if pl_module.trainer.training and name.startswith("train/") and "loss" in name:
                self._current[name] = float(torch.as_tensor(value).detach().float())
            return log(name, value, *args, **kwargs)

        pl_module.log = recording_log  # log_dict goes through log

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        self._current = {}

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        self.batches.append(dict(sorted(self._current.items())))
        if len(self.batches) >= self.steps:
            trainer.should_stop = True
            self.path.write_text(json.dumps({"batch": self.batches}, indent=1))


def first_step_losses(tmp_path: Path, configs: list[str], extra: list[str] = (), steps: int = 5):
    """The losses of the first ``steps`` batches of ``histo-gan fit`` on ``configs`` (seed 0,
    fp32, contiguous tensors, deterministic, no validation, no logger, no checkpoints)."""
    out = tmp_path / "losses.json"
    recorder = json.dumps([{"class_path": f"{__name__}.FirstStepLosses",
                            "init_args": {"path": str(out), "steps": steps}}])
    args = ["fit"]
    for config in configs:
        args += ["--config", config]
    args += [
        "--seed_everything=0",
        "--trainer.precision=32-true",
        "--channels_last=false",
        "--trainer.deterministic=true",
        "--trainer.accelerator=cpu",
        "--trainer.devices=1",
        "--trainer.limit_val_batches=0",
        "--trainer.num_sanity_val_steps=0",
        "--trainer.enable_checkpointing=false",
        f"--trainer.default_root_dir={tmp_path}",
        "--trainer.logger=false",
        f"--trainer.callbacks={recorder}",
        *extra,
    ]
    assert main(args) == 0
    return json.loads(out.read_text())["batch"]
