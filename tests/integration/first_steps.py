"""Record the losses of the first training batches of a config (for the fixture of
``test_first_step_losses.py``).

:class:`FirstStepLosses` is a callback: it records every ``train/...loss...`` value the module
logs during each of the first ``steps`` training batches, then stops training and writes
``{"batch": [{name: value}, ...], "without_gradient": [name, ...]}`` to ``path`` as JSON, the
second list naming every parameter of an optimizer that no optimizer step of those batches saw
a gradient for. The run keeps the config's own budget (so budget-defined schedules behave as in
the real run) and is only cut short.
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
        self._with_gradient: set[int] = set()

    def setup(self, trainer, pl_module, stage: str) -> None:
        log = pl_module.log

        def recording_log(name, value, *args, **kwargs):
            if pl_module.trainer.training and name.startswith("train/") and "loss" in name:
                self._current[name] = float(torch.as_tensor(value).detach().float())
            return log(name, value, *args, **kwargs)

        pl_module.log = recording_log  # log_dict goes through log

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        self._current = {}

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        for group in optimizer.param_groups:
            self._with_gradient.update(id(p) for p in group["params"] if p.grad is not None)

    def without_gradient(self, trainer, pl_module) -> list[str]:
        in_optimizers = {
            id(p) for o in trainer.optimizers for g in o.param_groups for p in g["params"]
        }
        missing = in_optimizers - self._with_gradient
        return sorted(name for name, p in pl_module.named_parameters() if id(p) in missing)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        self.batches.append(dict(sorted(self._current.items())))
        if len(self.batches) >= self.steps:
            trainer.should_stop = True
            record = {
                "batch": self.batches,
                "without_gradient": self.without_gradient(trainer, pl_module),
            }
            self.path.write_text(json.dumps(record, indent=1))


def first_steps(tmp_path: Path, configs: list[str], extra: list[str] = (), steps: int = 5) -> dict:
    """What :class:`FirstStepLosses` records in the first ``steps`` batches of ``histo-gan fit``
    on ``configs`` (seed 0, fp32, contiguous tensors, deterministic, no validation, no logger,
    no checkpoints): ``{"batch": [losses of each batch], "without_gradient": [names]}``."""
    out = tmp_path / "losses.json"
    recorder = json.dumps(
        [
            {
                "class_path": f"{__name__}.FirstStepLosses",
                "init_args": {"path": str(out), "steps": steps},
            }
        ]
    )
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
    return json.loads(out.read_text())
