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
import os
import sys

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
}


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``histo-gan`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in TOOLS:
        tool = importlib.import_module(TOOLS[argv[0]])
        return int(tool.main(argv[1:]) or 0)
    lightning_main(argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
