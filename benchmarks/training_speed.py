"""Training speed of every method, fp32-contiguous against the fast default, in one run.

    python benchmarks/training_speed.py [--steps 8] [--warmup 3] [--cases segmenter,cyclegan,...]
                                        [--out benchmarks/results/training_speed.md]

Each case is a method at its CPU protocol size, built from the protocol's own configs (the
same files the experiments run). Its training batches are drawn once from the configured
DataModule (timed: the loader's patches/s) and cached, so both arms train the same module from
the same initial weights on the same batches, in one thread:

- **fp32**: ``precision="32-true"``, every network contiguous (the suite before bf16);
- **fast**: the default of ``histo-gan fit`` on this machine (``trainer.precision: null`` ->
  :func:`histo_gan.precision.fast_precision`, channels-last for the networks whose class
  prefers it, :func:`histo_gan.precision.convert_to_channels_last`).

A step is one ``training_step`` (a GAN module updates all its networks in it). Step time is the
median after the warm-up, from the end of one batch to the end of the next, so every hook and
optimizer step is inside it; the two arms run in turn, ``--rounds`` times, and each keeps its
best median (a shared machine's load then slows both alike). The loader column is patches/s of the DataLoader (one process,
as the protocols run) against the patches/s a fast step consumes: below 2x the loader would
limit training. Then the same for inference: the sliding window over one whole 1000x1000 test
image (the evaluation path of every segmenter).

A second table decides the memory format per network: forward + backward + Adam of each
network alone at its protocol size under bf16 autocast, contiguous vs channels-last; networks
with a ratio above 1.05 carry ``channels_last = True``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import lightning as L  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PROTOCOLS = ROOT / "experiments" / "protocols"
DAFF = [
    "--config", "conf/experiment/pix2pixhd_stage{k}_tiny.yaml",
    "--config", "experiments/protocols/daff_monuseg.yaml",
    "--config", "experiments/protocols/daff_cpu.yaml",
]  # fmt: skip


@dataclass
class Case:
    """A method at its CPU protocol size: ``histo-gan fit`` arguments and what it needs."""

    name: str
    args: list[str]
    needs_hou_set: bool = False
    extra: list[str] = field(default_factory=list)


def cases() -> dict[str, Case]:
    hou = ["--config", "experiments/protocols/hou_refiners/data_cpu.yaml", "--config"]
    daff_g = ["--config", "conf/generator/daffgan_tiny.yaml"]
    return {
        "segmenter": Case(
            "segmenter (U-Net R18 depth 4, 192 px, batch 8)",
            ["--config", "experiments/protocols/learning_curve/cpu.yaml"],
        ),
        "hou2017": Case(
            "Hou 2017 refiner (64 px, batch 8)",
            [*hou, "experiments/protocols/hou_refiners/hou2017_cpu.yaml"],
            needs_hou_set=True,
        ),
        "hou2019": Case(
            "Hou 2019 refiner (64 px, batch 8)",
            [*hou, "experiments/protocols/hou_refiners/hou2019_cpu.yaml"],
            needs_hou_set=True,
        ),
        "cyclegan": Case(
            "CycleGAN (ResNet 16 ch, 128 px, batch 4)",
            ["--config", "experiments/protocols/mahmood2019/cyclegan_cpu.yaml"],
        ),
        "cgan": Case(
            "SN cGAN segmenter (128 px, batch 8)",
            ["--config", "experiments/protocols/mahmood2019/cpu.yaml"],
        ),
        "pix2pixhd1": Case("pix2pixHD stage 1 (128 px, batch 8)", [a.format(k=1) for a in DAFF]),
        "pix2pixhd2": Case("pix2pixHD stage 2 (128 px, batch 8)", [a.format(k=2) for a in DAFF]),
        "daffgan1": Case("DAFF-GAN stage 1 (128 px, batch 8)", [*(a.format(k=1) for a in DAFF), *daff_g]),
        "daffgan2": Case("DAFF-GAN stage 2 (128 px, batch 8)", [*(a.format(k=2) for a in DAFF), *daff_g]),
    }  # fmt: skip


def build(args: list[str]):
    """(module, datamodule) of ``histo-gan fit args`` without a trainer or run folder."""
    from histo_gan.cli import HistoGanCLI
    from histo_gan.data.datamodule import HistoDataModule

    class Build(HistoGanCLI):
        def before_instantiate_classes(self) -> None:
            pass

        def instantiate_trainer(self, **kwargs):
            return None

        def instantiate_classes(self) -> None:  # no channels-last here: the arm decides
            super(HistoGanCLI, self).instantiate_classes()

    cli = Build(
        model_class=None,
        datamodule_class=HistoDataModule,
        subclass_mode_model=True,
        args=[*args, "--channels_last", "false", "--trainer.logger", "false"],
        run=False,
        auto_configure_optimizers=False,
        save_config_callback=None,
    )
    return cli.model, cli.datamodule


def hou_set(folder: Path) -> Path:
    """A small initial `hou` set (the Hou refiners' input) made from main's training images."""
    images = folder / "train_images"
    subprocess.run(
        [sys.executable, str(PROTOCOLS / "split_images.py"), "experiments/splits/main.json",
         "../shared/data/monuseg/train/images", str(images)],
        cwd=ROOT, check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    out = folder / "hou"
    subprocess.run(
        [sys.executable, "-m", "histo_gan.cli", "synthesize", "--source", str(images), "--out",
         str(out), "--n", "64", "--size", "128", "--method", "hou", "--workers", "1", "--seed", "0"],
        cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    return out


def cached_batches(datamodule, count: int) -> tuple[list, float]:
    """``count`` training batches of the DataModule and the loader's patches/s."""
    datamodule.setup("fit")
    loader = datamodule.train_dataloader()
    batches, patches, start = [], 0, time.perf_counter()
    for batch in loader:
        batches.append(batch)
        patches += len(batch["image"])
        if len(batches) == count:
            break
    if len(batches) < count:
        raise ValueError(f"the loader gave {len(batches)} batches, {count} needed")
    return batches, patches / (time.perf_counter() - start)


class BatchTimer(L.Callback):
    """Wall time from the end of one training batch to the end of the next."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self._last: float | None = None

    def on_train_start(self, *args) -> None:
        self._last = time.perf_counter()

    def on_train_batch_end(self, *args) -> None:
        now = time.perf_counter()
        if self._last is not None:
            self.times.append(now - self._last)
        self._last = now


def train_seconds_per_step(
    args: list[str],
    batches: list,
    precision: str,
    fast_format: bool,
    warmup: int,
    accelerator: str = "cpu",
) -> float:
    """Median seconds per training step of a fresh module on the cached batches."""
    from torch.utils.data import DataLoader

    from histo_gan.precision import convert_to_channels_last

    L.seed_everything(0, verbose=False)
    module, datamodule = build(args)
    if fast_format:
        convert_to_channels_last(module)
    datamodule.setup = lambda stage=None: None
    datamodule.train_dataloader = lambda: DataLoader(batches, batch_size=None)
    timer = BatchTimer()
    trainer = L.Trainer(
        accelerator=accelerator,
        devices=1,
        precision=precision,
        max_epochs=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        callbacks=[timer],
    )
    trainer.fit(module, datamodule=datamodule)
    return statistics.median(timer.times[warmup:])


def inference_seconds(
    args: list[str], precision: str, fast_format: bool, accelerator: str = "cpu"
) -> float:
    """Seconds for the sliding window over one whole validation image (with the evaluator)."""
    from histo_gan.precision import convert_to_channels_last

    module, datamodule = build(args)
    if fast_format:
        convert_to_channels_last(module)
    datamodule.setup("fit")
    device = torch.device("cuda" if accelerator == "gpu" else "cpu")
    image = next(iter(datamodule.val_dataloader()))["image"].to(device)
    module.to(device).eval()
    plugin = L.Trainer(accelerator=accelerator, precision=precision, logger=False).precision_plugin
    times = []
    for _ in range(2):
        start = time.perf_counter()
        with torch.no_grad(), plugin.forward_context():
            module.evaluator.instances(module.segmenter(), image)
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return min(times)


def network_table(steps: int) -> list[tuple[str, float, float]]:
    """(network, bf16 contiguous s/step, bf16 channels-last s/step) at protocol sizes."""
    from histo_gan import networks as n

    def unet():
        return n.SmpUnet("resnet18", 4, (128, 64, 32, 16)), (8, 3, 192, 192)

    nets = {
        "SmpUnet R18 depth 4 (192 px, batch 8)": unet,
        "ResnetGenerator 16 ch, 3 blocks (128 px, batch 4)": lambda: (
            n.ResnetGenerator(3, 3, base_channels=16, n_blocks=3), (4, 3, 128, 128)),
        "PatchDiscriminator 16 ch, SN (128 px, batch 4)": lambda: (
            n.PatchDiscriminator(3, base_channels=16, spectral_norm=True), (4, 3, 128, 128)),
        "UnetGenerator 16 ch (128 px, batch 8)": lambda: (
            n.UnetGenerator(3, 3, base_channels=16, patch_size=128), (8, 3, 128, 128)),
        "ReferenceRefiner 16 ch (64 px, batch 8)": lambda: (
            n.ReferenceRefiner(base_channels=16, texture_channels=16, texture_convs=3, blocks=2),
            [(8, 3, 64, 64), (8, 3, 64, 64)]),
        "GlobalGenerator 16 ch (128 px, batch 8)": lambda: (
            n.GlobalGenerator(3, 3, base_channels=16, n_downsampling=3, n_blocks=2),
            (8, 3, 128, 128)),
        "DAFFGenerator 16 ch (128 px, batch 8)": lambda: (
            n.DAFFGenerator(3, 3, base_channels=16, n_downsampling=3, n_blocks=2),
            (8, 3, 128, 128)),
        "MultiscaleDiscriminator 16 ch (128 px, batch 8)": lambda: (
            n.MultiscaleDiscriminator(6, base_channels=16, n_layers=2, n_scales=2),
            (8, 6, 128, 128)),
    }  # fmt: skip
    rows = []
    for name, make in nets.items():
        arms = []  # contiguous, channels-last: stepped in turn, so machine load hits both alike
        for channels_last in (False, True):
            torch.manual_seed(0)
            net, shapes = make()
            shapes = shapes if isinstance(shapes, list) else [shapes]
            inputs = [torch.rand(s) for s in shapes]
            if channels_last:
                net = net.to(memory_format=torch.channels_last)
                inputs = [x.contiguous(memory_format=torch.channels_last) for x in inputs]
            arms.append((net, inputs, torch.optim.Adam(net.parameters()), []))
        for _ in range(steps):
            for net, inputs, optimizer, times in arms:
                start = time.perf_counter()
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    loss = _mean(net(*inputs))
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                times.append(time.perf_counter() - start)
        rows.append((name, *(statistics.median(arm[3][1:]) for arm in arms)))
    return rows


def _mean(output) -> torch.Tensor:
    if isinstance(output, list | tuple):
        return sum(_mean(o) for o in output)
    return output.float().mean()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=8, help="timed steps per arm")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps per arm")
    parser.add_argument("--rounds", type=int, default=2, help="fp32/fast rounds (best median)")
    parser.add_argument("--cases", default=",".join(cases()), help="comma-separated case keys")
    parser.add_argument("--no-networks", action="store_true", help="skip the per-network table")
    parser.add_argument("--out", type=Path, default=None, help="also write the tables (Markdown)")
    parser.add_argument("--accelerator", default="cpu", choices=["cpu", "gpu"])
    args = parser.parse_args(argv)
    if args.accelerator == "cpu":
        torch.set_num_threads(1)
    os.chdir(ROOT)
    from histo_gan.precision import FP32, fast_precision

    fast = fast_precision(args.accelerator)
    where = "one thread" if args.accelerator == "cpu" else torch.cuda.get_device_name()
    lines = [
        f"torch {torch.__version__}, {where}, fast = {fast} + channels-last where preferred; "
        f"{args.warmup} warm-up + {args.steps} timed steps per arm (median, best of "
        f"{args.rounds} rounds); load average "
        f"{os.getloadavg()[0]:.2f} at start",
        "",
        "| method (CPU protocol size) | fp32 s/step | fast s/step | speed-up | loader patches/s | patches/s a fast step takes | loader margin |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]  # fmt: skip
    print("\n".join(lines), flush=True)
    chosen = cases()
    with tempfile.TemporaryDirectory() as tmp:
        hou_root: Path | None = None
        for key in filter(None, args.cases.split(",")):
            case = chosen[key]
            extra = []
            if case.needs_hou_set:
                hou_root = hou_root or hou_set(Path(tmp))
                extra = [f"--data.synthetic.init_args.root={hou_root}",
                         f"--data.predict_source.init_args.root={hou_root}"]  # fmt: skip
            fit_args = [*case.args, *extra, *case.extra]
            _, datamodule = build(fit_args)
            batches, loader_rate = cached_batches(datamodule, args.warmup + args.steps + 1)
            best = {FP32: float("inf"), fast: float("inf")}
            for _ in range(args.rounds):  # arms in turn: a load change hits both alike
                for precision, fast_format in ((FP32, False), (fast, True)):
                    seconds = train_seconds_per_step(
                        fit_args, batches, precision, fast_format, args.warmup, args.accelerator
                    )
                    best[precision] = min(best[precision], seconds)
            slow, quick = best[FP32], best[fast]
            consumed = len(batches[0]["image"]) / quick
            line = (
                f"| {case.name} | {slow:.3f} | {quick:.3f} | **{slow / quick:.2f}x** | "
                f"{loader_rate:.0f} | {consumed:.0f} | {loader_rate / consumed:.1f}x |"
            )
            lines.append(line)
            print(line, flush=True)
        if "segmenter" in args.cases.split(","):
            segmenter = chosen["segmenter"].args
            slow = inference_seconds(segmenter, FP32, False, args.accelerator)
            quick = inference_seconds(segmenter, fast, True, args.accelerator)
            line = (
                f"| segmenter inference: sliding window + post-processing, one 1000x1000 "
                f"image | {slow:.2f} s | {quick:.2f} s | **{slow / quick:.2f}x** | | | |"
            )
            lines.append(line)
            print(line, flush=True)
    if not args.no_networks and args.accelerator == "cpu":
        table = [
            "",
            "Memory format per network (bf16 autocast, forward + backward + Adam, one thread):",
            "",
            "| network | contiguous s/step | channels-last s/step | ratio | channels_last |",
            "|---|---:|---:|---:|---|",
        ]
        print("\n".join(table), flush=True)
        for name, contiguous, channels_last in network_table(args.warmup + args.steps):
            ratio = contiguous / channels_last
            line = (
                f"| {name} | {contiguous:.3f} | {channels_last:.3f} | {ratio:.2f} | "
                f"{'yes' if ratio > 1.05 else 'no'} |"
            )
            table.append(line)
            print(line, flush=True)
        lines += table
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
