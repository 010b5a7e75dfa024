"""Lightning's overhead per method: training throughput and peak memory vs a plain PyTorch loop.

    python benchmarks/lightning_overhead.py [--device cpu|cuda] [--size 256] [--batch 2]
                                            [--steps 12] [--warmup 3] [--paper-size]
                                            [--modules segmenter,cyclegan,...]

For each module the same networks take the same cached batches (drawn once from the bundled
sample, so data loading is out of both measurements) in two ways, each in its own process:

- **lightning**: ``Trainer.fit`` with the module (no logger, checkpoints, progress bar or
  validation); a batch's time runs from the end of the previous batch to the end of this one,
  so every hook, the logging calls and the optimizer wrappers are inside it;
- **plain**: a ``for`` loop over the same DataLoader that calls the module's own
  ``training_step`` with Lightning's machinery replaced by plain torch (``loss.backward()``,
  ``optimizer.step()``, ``requires_grad`` toggling, no logging).

Throughput is one batch over the median batch time after the warm-up (robust to a busy
machine). Prints patches/s and peak memory of both and the ratios (goal: Lightning within 5%
in time).
Default widths are small enough for a CPU; ``--paper-size`` uses the papers' networks (GPU).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))


def segmenter(paper: bool):
    from histo_gan.modules import SegmenterModule
    from histo_gan.networks import SmpUnet

    network = SmpUnet("resnet34") if paper else SmpUnet("resnet18", 4, (128, 64, 32, 16))
    return SegmenterModule(network), {}


def cyclegan(paper: bool):
    from histo_gan.modules import CycleGANModule
    from histo_gan.networks import PatchDiscriminator, ResnetGenerator

    width, blocks = (64, 9) if paper else (16, 3)
    return CycleGANModule(
        ResnetGenerator(3, 3, base_channels=width, n_blocks=blocks),
        ResnetGenerator(3, 3, base_channels=width, n_blocks=blocks),
        PatchDiscriminator(3, base_channels=width, spectral_norm=True),
        PatchDiscriminator(3, base_channels=width, spectral_norm=True),
    ), {"unpaired_real": True}


def cgan_segmenter(paper: bool):
    from histo_gan.modules import SpectralNormCGANSegmenterModule
    from histo_gan.networks import PatchDiscriminator, UnetGenerator

    width = 64 if paper else 16
    return SpectralNormCGANSegmenterModule(
        UnetGenerator(3, 3, base_channels=width, patch_size=256),
        PatchDiscriminator(3, base_channels=width, spectral_norm=True, condition_channels=3),
    ), {}


def _refiner_parts(paper: bool) -> dict:
    from histo_gan.networks import PairDiscriminator, ReferenceRefiner, SmpUnet
    from histo_gan.training import RefinerPhases, SegmentationHead

    width = 32 if paper else 16
    # straight into the joint G/D/R rounds, the phase that trains all three networks
    schedule = RefinerPhases(0, 0, 0, 0, joint_rounds=10**6, generator_steps=1,
                               discriminator_steps=1, segmenter_steps=1, final_segmenter_steps=0)  # fmt: skip
    network = SmpUnet("resnet34") if paper else SmpUnet("resnet18", 3, (64, 32, 16))
    return {"refiner": ReferenceRefiner(base_channels=width, texture_channels=width),
            "discriminator": PairDiscriminator(base_channels=width, texture_channels=width),
            "segmentation_head": SegmentationHead(network), "phases": schedule}  # fmt: skip


REFINER_DATA = {"synthetic_ratio": 1.0, "reference": "same_image", "unpaired_real": True}


def hou2017(paper: bool):
    from histo_gan.data import GeneratedInitialPatches
    from histo_gan.modules import HardExampleRefinerModule

    return HardExampleRefinerModule(**_refiner_parts(paper)), {
        **REFINER_DATA, "synthetic": GeneratedInitialPatches(n=64, size=256)}  # fmt: skip


def hou2019(paper: bool):
    from histo_gan.data import GeneratedInitialPatches
    from histo_gan.modules import ImportanceSamplingRefinerModule

    return ImportanceSamplingRefinerModule(**_refiner_parts(paper)), {
        **REFINER_DATA, "synthetic": GeneratedInitialPatches(n=64, size=256)}  # fmt: skip


def _pix2pixhd_stage2(generator_class: str, paper: bool):
    import histo_gan.networks as networks
    from histo_gan.modules import Pix2PixHDModule
    from histo_gan.training import MaskToImage

    width, blocks = (64, 9) if paper else (16, 3)
    generator = getattr(networks, generator_class)(3, 3, base_channels=width, n_blocks=blocks)
    discriminator = networks.MultiscaleDiscriminator(3, base_channels=width, condition_channels=3)
    return Pix2PixHDModule(generator, MaskToImage(), discriminator), {}


def pix2pixhd(paper: bool):
    return _pix2pixhd_stage2("GlobalGenerator", paper)


def daffgan(paper: bool):
    return _pix2pixhd_stage2("DAFFGenerator", paper)


MODULES = {"segmenter": segmenter, "cyclegan": cyclegan, "cgan_segmenter": cgan_segmenter,
           "hou2017": hou2017, "hou2019": hou2019, "pix2pixhd": pix2pixhd, "daffgan": daffgan}  # fmt: skip


def cached_batches(args, data_options: dict) -> list[dict]:
    from histo_gan.data import HistoDataModule

    data = HistoDataModule(patch_size=args.size, batch_size=args.batch, augment=False,
                           patches_per_epoch=args.batch * args.steps, **data_options)  # fmt: skip
    return list(data.train_dataloader())


class _Timer:
    """Lightning callback: the end time of every batch (and the memory baseline after warm-up)."""

    def __init__(self, warmup: int, device):
        import lightning as L

        self.ends: list[float] = []

        class Callback(L.Callback):
            def on_train_batch_end(cb, trainer, pl_module, outputs, batch, batch_idx):
                _sync(device)
                self.ends.append(time.perf_counter())
                if batch_idx == warmup - 1:
                    self.base = _start(device)

        self.callback = Callback()


def _median_step(ends: list[float], warmup: int) -> float:
    """Median batch-to-batch time after the warm-up (robust to a busy machine)."""
    return statistics.median(b - a for a, b in zip(ends[warmup - 1 :], ends[warmup:]))


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _start(device):
    import peak_memory

    return peak_memory.start(device)


def run_lightning(module, batches, args, device) -> tuple[float, float]:
    import lightning as L
    import peak_memory
    from torch.utils.data import DataLoader

    timer = _Timer(args.warmup, device)
    trainer = L.Trainer(accelerator=device.type, devices=1, max_epochs=1, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, limit_val_batches=0, num_sanity_val_steps=0,
                        callbacks=[timer.callback])  # fmt: skip
    trainer.fit(module, train_dataloaders=DataLoader(batches, batch_size=None))
    return 1 / _median_step(timer.ends, args.warmup), peak_memory.peak_mib(device, timer.base)


def _plain_harness(module, optimizers) -> None:
    """Replace what ``training_step`` uses of Lightning with plain torch."""
    module._trainer = SimpleNamespace(optimizers=optimizers, max_epochs=-1, max_steps=-1,
                                      current_epoch=0, global_step=0, callbacks=[],
                                      loggers=[], logger=None)  # fmt: skip
    module.optimizers = lambda use_pl_optimizer=True: (
        optimizers if len(optimizers) > 1 else optimizers[0]
    )
    module.manual_backward = lambda loss, *a, **k: loss.backward()
    module.log = module.log_dict = lambda *a, **k: None


def run_plain(module, batches, args, device) -> tuple[float, float]:
    import peak_memory
    import torch
    from torch.utils.data import DataLoader

    module.to(device).train()
    configured = module.configure_optimizers()
    if isinstance(configured, dict):
        configured = configured["optimizer"]
    optimizers = list(configured) if isinstance(configured, list | tuple) else [configured]
    _plain_harness(module, optimizers)
    ends = []
    for index, batch in enumerate(DataLoader(batches, batch_size=None)):
        batch = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
        loss = module.training_step(batch, index)
        if module.automatic_optimization:
            optimizers[0].zero_grad(set_to_none=True)
            loss.backward()
            optimizers[0].step()
        _sync(device)
        ends.append(time.perf_counter())
        if index == args.warmup - 1:
            base = peak_memory.start(device)
    return 1 / _median_step(ends, args.warmup), peak_memory.peak_mib(device, base)


def measure(name: str, mode: str, args) -> dict:
    import torch

    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    module, data_options = MODULES[name](args.paper_size)
    batches = cached_batches(args, data_options)
    run = run_lightning if mode == "lightning" else run_plain
    steps_per_s, peak = run(module, batches, args, device)
    return {"patches_per_s": steps_per_s * args.batch, "peak_mib": peak}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--paper-size", action="store_true")
    parser.add_argument("--modules", default=",".join(MODULES))
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(*args.child, args)))
        return

    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "PYTHONPATH": str(ROOT),
           "NO_ALBUMENTATIONS_UPDATE": "1"}  # fmt: skip
    print(f"device {args.device}, {args.size}x{args.size}, batch {args.batch}, "
          f"{args.steps - args.warmup} timed steps after {args.warmup}, threads {args.threads}, "
          f"{'paper' if args.paper_size else 'CPU'} widths")  # fmt: skip
    print(f"{'module':<16} {'plain p/s':>10} {'lightning p/s':>14} {'time ratio':>11} "
          f"{'plain MiB':>10} {'lightning MiB':>14}")  # fmt: skip
    for name in args.modules.split(","):
        result = {}
        for mode in ("plain", "lightning"):
            command = [sys.executable, __file__, "--child", name, mode] + sys.argv[1:]
            out = subprocess.run(command, env=env, capture_output=True, text=True)
            if out.returncode:
                sys.exit(f"{name} ({mode}) failed:\n{out.stderr[-3000:]}")
            result[mode] = json.loads(out.stdout.strip().splitlines()[-1])
        plain, lightning = result["plain"], result["lightning"]
        ratio = plain["patches_per_s"] / lightning["patches_per_s"]
        print(f"{name:<16} {plain['patches_per_s']:>10.2f} {lightning['patches_per_s']:>14.2f} "
              f"{ratio:>10.3f}x {plain['peak_mib']:>10.0f} {lightning['peak_mib']:>14.0f}")  # fmt: skip
    print("time ratio = Lightning's time per patch / the plain loop's (goal <= 1.05)")


if __name__ == "__main__":
    main()
