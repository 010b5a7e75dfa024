"""The ``histo-gan`` command.

``histo-gan fit|validate|test|predict`` is Lightning's CLI in subclass mode: the model is any
LightningModule named by ``class_path`` (``histo_gan.modules.*``) and the data is always
:class:`~histo_gan.data.HistoDataModule`. Configs live in ``conf/`` and compose, e.g.::

    histo-gan fit --config conf/experiment/baseline_unet_tiny.yaml
    histo-gan fit --config conf/trainer/cpu.yaml --config conf/data/sample.yaml \\
                  --config conf/model/baseline_unet.yaml --config conf/logger/wandb.yaml

A config with ``overlays: <config>`` stands for that config followed by itself
(:mod:`histo_gan.config_files`): each tiny config is its paper config plus what makes it small.

Every run writes into its own folder ``<trainer.default_root_dir>/<name>/version_<N>/``
(:mod:`histo_gan.runs`; root ``runs`` and ``name`` from ``--name`` by default): loggers,
checkpoints (:class:`~histo_gan.callbacks.RunCheckpoint`), config, split and summaries. A
:class:`~histo_gan.callbacks.DivergenceGuard` watches every ``fit`` that does not configure
its own. ``--ckpt_path last`` or ``best`` names that checkpoint of the newest run of the name.

``histo-gan synthesize``, ``evaluate``, ``report``, ``segment`` and ``sweep`` are separate tools with
their own ``--help``.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import re
import sys
import warnings
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

from jsonargparse import ArgumentParser  # noqa: E402
from lightning.pytorch.callbacks import ModelCheckpoint, ProgressBar  # noqa: E402
from lightning.pytorch.cli import LightningCLI  # noqa: E402
from lightning.pytorch.loggers import CSVLogger, Logger, TensorBoardLogger, WandbLogger  # noqa: E402

from histo_gan.callbacks.checkpoint import RunCheckpoint  # noqa: E402
from histo_gan.callbacks.chunk import ChunkTimer  # noqa: E402
from histo_gan.callbacks.divergence import DivergenceError, DivergenceGuard  # noqa: E402
from histo_gan.callbacks.progress import StepProgressBar  # noqa: E402
from histo_gan.config_files import with_overlays  # noqa: E402
from histo_gan.config_origin import origin_of  # noqa: E402
from histo_gan.data.datamodule import HistoDataModule  # noqa: E402
from histo_gan.data.synthetic import SyntheticDataset  # noqa: E402
from histo_gan.distributed import is_first_process, leave_process_group  # noqa: E402
from histo_gan.files import write_text_atomic  # noqa: E402
from histo_gan.precision import convert_to_channels_last, fast_precision  # noqa: E402
from histo_gan.readers import DataError, SettingError  # noqa: E402
from histo_gan.runs import CHECKPOINT_ALIASES, RunFolder, find_checkpoint, next_version  # noqa: E402

DEFAULT_ROOT = "runs"
DEFAULT_LOGGERS = [
    {"class_path": "lightning.pytorch.loggers.CSVLogger", "init_args": {"save_dir": DEFAULT_ROOT}},
    {
        "class_path": "lightning.pytorch.loggers.TensorBoardLogger",
        "init_args": {"save_dir": DEFAULT_ROOT},
    },
]
# Set while a run is going on, for the processes that DDP launches with the same command line.
RUN_DIR_ENV = "HISTO_GAN_RUN_DIR"


def quiet_lightning() -> None:
    """Hide Lightning's product tips and a deprecation raised inside Lightning itself."""

    def not_a_tip(record: logging.LogRecord) -> bool:
        return "💡 Tip" not in str(record.msg)

    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
        logging.getLogger(name).addFilter(not_a_tip)
    warnings.filterwarnings(
        "ignore", message=r".*isinstance\(treespec, LeafSpec\).*", category=FutureWarning
    )


class HistoGanCLI(LightningCLI):
    """LightningCLI with the project's defaults: run folders, loggers, checkpoints, guard."""

    run: RunFolder | None = None
    created_run: RunFolder | None = None  # the folder this process made, for clean-up on errors

    def add_arguments_to_parser(self, parser) -> None:
        parser.add_argument(
            "--name",
            type=str | None,
            default=None,
            help="run name: files go to <trainer.default_root_dir>/<name>/version_<N>/ "
            "(default: the model class, e.g. SegmenterModule -> segmenter)",
        )
        parser.add_argument(
            "--channels_last",
            type=bool,
            default=True,
            help="convert the networks that run faster channels-last (histo_gan.precision); "
            "false keeps every network contiguous",
        )
        parser.add_argument(
            "--max_chunk_minutes",
            type=float | None,
            default=None,
            help="stop fit after this many minutes with last.ckpt written; resume with "
            "--ckpt_path last (experiments/protocols/chunked_fit.sh chains the chunks)",
        )
        parser.set_defaults({"trainer.logger": DEFAULT_LOGGERS, "trainer.default_root_dir": None})

    def parse_arguments(self, parser, args) -> None:
        """Lightning's parsing, after a config that overlays others is replaced by the configs
        it stands for (:mod:`histo_gan.config_files`)."""
        if args is None:  # the command line itself: nothing to warn about
            self.config = parser.parse_args(with_overlays(sys.argv[1:]))
            return
        if isinstance(args, list | tuple):
            args = with_overlays(args)
        super().parse_arguments(parser, args)

    # -- where the run goes ----------------------------------------------------------------
    def before_instantiate_classes(self) -> None:
        config = self.config[self.subcommand]
        self.run_root = Path(config["trainer"]["default_root_dir"] or DEFAULT_ROOT)
        self.run_name = config["name"] or run_name_of(config["model"]["class_path"])
        alias = config.get("ckpt_path")
        if alias in CHECKPOINT_ALIASES:
            config["ckpt_path"] = self._resolve_checkpoint(alias)

    def _resolve_checkpoint(self, alias: str) -> str | None:
        path = find_checkpoint(self.run_root, self.run_name, alias)
        where = f"{self.run_root / self.run_name}/version_*/checkpoints"
        if path is None and self.subcommand == "fit" and alias == "last":
            _say(f"no last.ckpt in {where}: training from scratch")
            return None
        if path is None:
            raise DataError(f"--ckpt_path {alias}: no {alias}.ckpt in {where}")
        _say(f"checkpoint: {path}")
        return str(path)

    def instantiate_trainer(self, **kwargs):
        inherited = os.environ.get(RUN_DIR_ENV)
        if inherited:
            self.run = RunFolder.at(inherited)
        elif is_first_process():
            self.run = HistoGanCLI.created_run = RunFolder.create(self.run_root, self.run_name)
        else:  # another rank of a job started by torchrun or srun: rank 0 makes the folder
            version = next_version(self.run_root, self.run_name)
            self.run = RunFolder(self.run_root, self.run_name, version)  # never created
        trainer_config = self._get(self.config_init, "trainer", default={})
        config = self.config[self.subcommand]
        kwargs["default_root_dir"] = str(self.run.path)
        kwargs["logger"] = self._placed_loggers()
        # precision: null (the default) is the machine's fast precision; the saved config
        # keeps null, so a checkpoint's run picks the fast precision of wherever it runs next.
        if trainer_config.get("precision") is None:
            kwargs["precision"] = fast_precision(trainer_config.get("accelerator"))
        kwargs["callbacks"] = with_default_callbacks(
            trainer_config.get("callbacks"),
            trainer_config.get("enable_checkpointing"),
            trainer_config.get("enable_progress_bar"),
        )
        if self.subcommand == "fit" and config.get("max_chunk_minutes") is not None:
            kwargs["callbacks"].append(ChunkTimer(config["max_chunk_minutes"]))
        trainer = super().instantiate_trainer(**kwargs)
        for callback in trainer.checkpoint_callbacks:
            if isinstance(callback, ModelCheckpoint) and callback.dirpath is None:
                callback.dirpath = str(self.run.checkpoints)
        if trainer.is_global_zero and not inherited:
            _say(f"run folder: {self.run.path}")
        return trainer

    def instantiate_classes(self) -> None:
        super().instantiate_classes()
        if self.config[self.subcommand].get("channels_last", True):
            convert_to_channels_last(self.model)

    def _placed_loggers(self):
        """The configured loggers, each told to write into the run folder."""
        spec = self.config[self.subcommand]["trainer"]["logger"]
        if spec is None or spec is False:
            return False
        specs = DEFAULT_LOGGERS if spec is True else spec if isinstance(spec, list) else [spec]
        parser = ArgumentParser(exit_on_error=False)
        parser.add_argument("--loggers", type=list[Logger])
        plain = [s.as_dict() if hasattr(s, "as_dict") else dict(s) for s in specs]
        loggers = parser.instantiate_classes(parser.parse_object({"loggers": plain})).loggers
        return [
            place_logger(logger, plain_spec, self.run.path)
            for logger, plain_spec in zip(loggers, plain)
        ]

    # -- stages ----------------------------------------------------------------------------
    def before_fit(self) -> None:
        if self.trainer.world_size > 1:
            os.environ[RUN_DIR_ENV] = str(self.run.path)

    def after_fit(self) -> None:
        os.environ.pop(RUN_DIR_ENV, None)
        self._finish("fit")

    def after_validate(self) -> None:
        self._finish("validate")

    def after_test(self) -> None:
        self._finish("test")

    def after_predict(self) -> None:
        self._finish("predict")

    def _finish(self, stage: str) -> None:
        if stage != "predict":
            write_summary(self.trainer, stage)
        if self.trainer.is_global_zero and self.run is not None and not self.run.remove_if_empty():
            _say(f"{stage} done: {self.run.path}")


def run_name_of(class_path: str) -> str:
    """``histo_gan.modules.SegmenterModule`` -> ``segmenter``."""
    name = class_path.rsplit(".", 1)[-1].removesuffix("Module")
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower() or "run"


def place_logger(logger, spec: dict, run_dir: Path):
    """Rebuild ``logger`` so that it writes into ``run_dir`` (CSV, TensorBoard, W&B)."""
    args = dict(spec.get("init_args") or {})
    if isinstance(logger, CSVLogger | TensorBoardLogger):
        args.update(save_dir=str(run_dir), name="", version="")
    elif isinstance(logger, WandbLogger):
        args.update(save_dir=str(run_dir))
    else:
        return logger
    return type(logger)(**args)


def with_default_callbacks(callbacks, enable_checkpointing, enable_progress_bar=None) -> list:
    """``callbacks`` plus a DivergenceGuard, a RunCheckpoint and a StepProgressBar where none
    is configured (and checkpointing / the progress bar are not switched off)."""
    callbacks = list(callbacks or [])
    if not any(isinstance(c, DivergenceGuard) for c in callbacks):
        callbacks.append(DivergenceGuard())
    checkpointing = enable_checkpointing is not False
    if checkpointing and not any(isinstance(c, ModelCheckpoint) for c in callbacks):
        callbacks.append(RunCheckpoint())
    progress = enable_progress_bar is not False
    if progress and not any(isinstance(c, ProgressBar) for c in callbacks):
        callbacks.append(StepProgressBar())
    return callbacks


def write_summary(trainer, stage: str) -> dict:
    """Write the final metrics of a run to ``<run folder>/summary_<stage>.json``.

    Also written to the path in ``$HISTO_GAN_SUMMARY`` when set (the local sweep runner
    reads it). Holds every logged scalar, the best checkpoint and its score, the run
    folder, the precision and, for a run that trained on a synthetic dataset, that dataset's
    folder and fingerprint (``synthetic_root``, ``synthetic_fingerprint``).
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
    summary["global_step"] = trainer.global_step
    summary["max_steps"] = trainer.max_steps
    summary["precision"] = str(trainer.precision)
    summary["stopped_by_chunk_timer"] = any(
        isinstance(c, ChunkTimer) and c.stopped_early for c in trainer.callbacks
    )
    summary["run_dir"] = str(Path(log_dir)) if log_dir else None
    if stage == "fit":  # the report reads it from the fit; a test would hash the set again
        summary.update(_synthetic_set_of(trainer))
    targets = [Path(log_dir) / f"summary_{stage}.json"] if log_dir else []
    if os.environ.get("HISTO_GAN_SUMMARY"):
        targets.append(Path(os.environ["HISTO_GAN_SUMMARY"]))
    for path in targets:
        write_text_atomic(path, json.dumps(summary, indent=2))
    return summary


def _synthetic_set_of(trainer) -> dict:
    """Folder and fingerprint of the synthetic dataset a run's data module mixes in, if any."""
    datamodule = getattr(trainer, "datamodule", None)
    if not getattr(datamodule, "synthetic_ratio", 0):
        return {}
    dataset = getattr(getattr(datamodule, "synthetic", None), "dataset", None)
    if not isinstance(dataset, SyntheticDataset):
        return {}
    return {"synthetic_root": str(dataset.root), "synthetic_fingerprint": dataset.fingerprint()}


def _say(message: str) -> None:
    print(f"histo-gan: {message}", flush=True)


def lightning_main(args: list[str] | None = None) -> HistoGanCLI:
    quiet_lightning()
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
    "realism": "histo_gan.realism",
    "report": "histo_gan.report",
    "segment": "histo_gan.segment",
    "sweep": "histo_gan.sweep",
}

# One line per command for ``histo-gan --help`` (the README's command table says the same).
COMMANDS = {
    "fit": "train a method (any histo_gan.modules class) on HistoDataModule, in a new run folder",
    "validate": "score a model or checkpoint on the validation images",
    "test": "score a model or checkpoint on the test images (per-image and overall metrics)",
    "predict": "run a checkpoint's predictor (label maps, synthetic H&E) through writer callbacks",
    "synthesize": "write an initial synthetic dataset from real tissue (hou, mahmood, centroids)",
    "segment": "instance label maps (and overlays) for a folder of new images from a checkpoint",
    "realism": "how real synthetic H&E looks: classifier two-sample test and stain distances",
    "report": "comparison tables and plots from finished test runs",
    "sweep": "run a W&B sweep YAML locally, offline and resumable (--parallel N trials at a time)",
    "evaluate": "score predicted instance label maps against ground-truth label maps",
}
LIGHTNING_COMMANDS = ("fit", "validate", "test", "predict")


def help_page() -> str:
    """``histo-gan --help``: every command with one line, Lightning's and the suite's tools."""
    width = max(map(len, COMMANDS)) + 2

    def rows(names) -> str:
        return "\n".join(f"  {name:<{width}}{COMMANDS[name]}" for name in names)

    return (
        "usage: histo-gan COMMAND [options]\n\n"
        "Synthetic H&E training data for nucleus segmentation: train, evaluate and compare.\n"
        "`histo-gan COMMAND --help` lists the options of one command.\n\n"
        "Training and evaluation (Lightning's CLI; configs in conf/ compose with --config):\n"
        f"{rows(LIGHTNING_COMMANDS)}\n\n"
        f"Tools:\n{rows(name for name in COMMANDS if name in TOOLS)}\n\n"
        "Examples:\n"
        "  histo-gan fit --config conf/experiment/baseline_unet_tiny.yaml\n"
        "  histo-gan test --config conf/experiment/baseline_unet_tiny.yaml --ckpt_path best\n"
        "  histo-gan synthesize --source DIR --out DIR --n 1000 --size 256 --method hou\n"
    )


def data_error_in(error: BaseException) -> DataError | None:
    """The DataError behind ``error`` (jsonargparse wraps the ones raised while parsing)."""
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, DataError):
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None


def _located(reason: BaseException, arguments: list[str]) -> str:
    """The message of ``reason``; for a bad setting, with the config file that set it."""
    if isinstance(reason, SettingError):
        return reason.where(origin_of(arguments, reason.key))
    return str(reason)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``histo-gan`` console script.

    Bad input data ends with one line naming the file (exit status 2), divergence with one
    line naming the loss or weight and the step (exit status 1).
    """
    from_command_line = argv is None
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv[0] if argv else ""
    if command in ("", "-h", "--help"):
        print(help_page(), end="", file=sys.stdout if command else sys.stderr)
        return 0 if command else 2
    if not command.startswith("-") and command not in COMMANDS:
        print(
            f"histo-gan: error: unknown command {command!r}; commands: "
            f"{', '.join(COMMANDS)} (histo-gan --help)",
            file=sys.stderr,
        )
        return 2
    if command in TOOLS:
        tool = importlib.import_module(TOOLS[command])
        try:
            return int(tool.main(argv[1:]) or 0)
        except (ValueError, FileNotFoundError) as error:  # bad input: a message, not a trace
            print(f"histo-gan {command}: error: {error}", file=sys.stderr)
            return 2
    HistoGanCLI.created_run = None
    try:
        lightning_main(None if from_command_line else argv)
    except (DataError, DivergenceError, ValueError) as error:
        reason = error if isinstance(error, DivergenceError) else data_error_in(error)
        if reason is None:
            raise
        created = HistoGanCLI.created_run
        if isinstance(reason, DataError) and created is not None:
            created.discard_unless_trained()
        print(f"histo-gan {command}: error: {_located(reason, argv[1:])}", file=sys.stderr)
        return 1 if isinstance(reason, DivergenceError) else 2
    finally:
        os.environ.pop(RUN_DIR_ENV, None)
        leave_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
