"""The ``histo-gan`` command.

``histo-gan fit|validate|test|predict`` is Lightning's CLI in subclass mode: the model is any
LightningModule named by ``class_path`` (``histo_gan.modules.*``) and the data is always
:class:`~histo_gan.data.HistoDataModule`. Configs live in ``conf/`` and compose, e.g.::

    histo-gan fit --config conf/experiment/baseline_unet_tiny.yaml
    histo-gan fit --config conf/trainer/cpu.yaml --config conf/data/sample.yaml \\
                  --config conf/model/baseline_unet.yaml --config conf/logger/wandb.yaml

``histo-gan synthesize``, ``histo-gan evaluate`` and ``histo-gan sweep`` are separate tools
with their own ``--help``.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

from lightning.pytorch.cli import LightningCLI  # noqa: E402

from histo_gan.data.datamodule import HistoDataModule  # noqa: E402

DEFAULT_LOGGERS = [
    {"class_path": "lightning.pytorch.loggers.CSVLogger", "init_args": {"save_dir": "runs"}},
    {
        "class_path": "lightning.pytorch.loggers.TensorBoardLogger",
        "init_args": {"save_dir": "runs"},
    },
]


class HistoGanCLI(LightningCLI):
    """LightningCLI with the project's defaults (loggers, config saving)."""

    def add_arguments_to_parser(self, parser) -> None:
        parser.set_defaults({"trainer.logger": DEFAULT_LOGGERS})

    def before_fit(self) -> None:
        align_logger_versions(self.trainer)

    def before_validate(self) -> None:
        align_logger_versions(self.trainer)

    def before_test(self) -> None:
        align_logger_versions(self.trainer)

    def before_predict(self) -> None:
        align_logger_versions(self.trainer)

    def after_fit(self) -> None:
        write_summary(self.trainer, "fit")

    def after_validate(self) -> None:
        write_summary(self.trainer, "validate")

    def after_test(self) -> None:
        write_summary(self.trainer, "test")


def align_logger_versions(trainer) -> None:
    """Loggers that share a folder write into one ``version_N``, the first logger's.

    Each Lightning logger numbers its versions on its own, so CSV and TensorBoard loggers of
    the same run would otherwise land in ``version_0`` and ``version_1``.
    """
    loggers = trainer.loggers
    if len(loggers) < 2:
        return
    first = loggers[0]
    for logger in loggers[1:]:
        same_place = (getattr(logger, "save_dir", None), getattr(logger, "name", None)) == (
            getattr(first, "save_dir", None),
            getattr(first, "name", None),
        )
        if same_place and hasattr(logger, "_version") and logger._version is None:
            logger._version = first.version


def write_summary(trainer, stage: str) -> dict:
    """Write the final metrics of a run to ``<log_dir>/summary_<stage>.json``.

    Also written to the path in ``$HISTO_GAN_SUMMARY`` when set (the local sweep runner
    reads it). Holds every logged scalar plus the best checkpoint and its score.
    """
    log_dir = trainer.log_dir  # a collective under DDP: every rank asks
    if not trainer.is_global_zero:
        return {}
    summary = {
        name: float(value)
        for name, value in trainer.callback_metrics.items()
        if getattr(value, "numel", lambda: 1)() == 1
    }
    checkpoint = getattr(trainer, "checkpoint_callback", None)
    if checkpoint is not None and getattr(checkpoint, "best_model_path", ""):
        summary["best_model_path"] = checkpoint.best_model_path
        if checkpoint.best_model_score is not None:
            summary["best_model_score"] = float(checkpoint.best_model_score)
    summary["epochs"] = trainer.current_epoch
    targets = [Path(log_dir) / f"summary_{stage}.json"] if log_dir else []
    if os.environ.get("HISTO_GAN_SUMMARY"):
        targets.append(Path(os.environ["HISTO_GAN_SUMMARY"]))
    for path in targets:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, suffix=".tmp", delete=False) as f:
            json.dump(summary, f, indent=2)
        os.replace(f.name, path)
    return summary


def lightning_main(args: list[str] | None = None) -> HistoGanCLI:
    return HistoGanCLI(
        model_class=None,
        datamodule_class=HistoDataModule,
        subclass_mode_model=True,
        save_config_kwargs={"overwrite": True},
        args=args,
        auto_configure_optimizers=False,
    )


# Tools outside Lightning's fit/validate/test/predict: name -> module with main(argv) -> int.
TOOLS = {
    "synthesize": "histo_gan.synthesis.cli",
    "evaluate": "histo_gan.evaluate",
    "sweep": "histo_gan.sweep",
    "report": "histo_gan.report",
    "realism": "histo_gan.realism",
}


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``histo-gan`` console script."""
    from_command_line = argv is None
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in TOOLS:
        tool = importlib.import_module(TOOLS[argv[0]])
        try:
            return int(tool.main(argv[1:]) or 0)
        except (ValueError, FileNotFoundError) as error:  # bad input: a message, not a trace
            print(f"histo-gan {argv[0]}: error: {error}", file=sys.stderr)
            return 2
    lightning_main(None if from_command_line else argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
