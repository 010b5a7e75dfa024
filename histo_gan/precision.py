"""Fast numerics where the hardware has them: bf16 mixed precision and channels-last weights.

Two independent choices, both made once per run by the command line (:mod:`histo_gan.cli`):

- **Precision.** ``trainer.precision: null`` (the default) means "the fastest precision this
  machine trains reliably in": ``bf16-mixed`` on CPUs with bf16 units (AVX512-BF16 or
  AMX-BF16) and on GPUs that support bf16, ``32-true`` elsewhere. Any explicit value
  (``32-true`` to switch it off) is passed to Lightning unchanged. bf16-mixed is autocast:
  parameters, gradients, optimizer state and checkpoints stay float32, so a bf16 run's
  checkpoint resumes in an fp32 run and back.
- **Memory format.** Networks whose class sets ``channels_last = True`` (measured faster by
  ``benchmarks/training_speed.py``) are converted to ``torch.channels_last`` before training;
  the top-level key ``channels_last: false`` keeps every network contiguous. Inputs need no
  conversion: a convolution with channels-last weights runs channels-last whatever the input.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import torch
from torch import nn

__all__ = [
    "FAST",
    "FP32",
    "convert_to_channels_last",
    "cpu_has_bf16",
    "fast_precision",
    "prefers_channels_last",
]

FAST = "bf16-mixed"
FP32 = "32-true"
CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


@functools.cache
def cpu_has_bf16(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX-BF16).

    Read from the kernel's CPU flags on Linux; other systems count as without (bf16 emulated
    in fp32 units is slower than fp32).
    """
    path = Path(cpuinfo)
    if not sys.platform.startswith("linux") or not path.is_file():
        return False
    for line in path.read_text().splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            return any(flag in flags for flag in CPU_BF16_FLAGS)
    return False


def _wants_gpu(accelerator: str | None) -> bool:
    if accelerator in ("gpu", "cuda"):
        return True
    return accelerator in (None, "auto") and torch.cuda.is_available()


def fast_precision(accelerator: str | None = "auto") -> str:
    """Lightning precision string for ``accelerator``: ``"bf16-mixed"`` or ``"32-true"``."""
    if _wants_gpu(accelerator):
        return FAST if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else FP32
    if accelerator in (None, "auto", "cpu"):
        return FAST if cpu_has_bf16() else FP32
    return FP32  # mps, xla, ...: leave them to their own defaults


def prefers_channels_last(network: nn.Module) -> bool:
    """True when the network's class declares ``channels_last = True``."""
    return bool(getattr(type(network), "channels_last", False))


def convert_to_channels_last(module: nn.Module) -> list[str]:
    """Convert, in place, every submodule whose class prefers channels-last.

    Returns the qualified names of the converted submodules (outermost only), for the log.
    Parameters keep their dtype and values; only their strides change.
    """
    converted: list[str] = []
    for name, child in module.named_modules():
        if "" in converted or any(name.startswith(f"{done}.") for done in converted):
            continue
        if prefers_channels_last(child):
            child.to(memory_format=torch.channels_last)
            converted.append(name)
    return converted
