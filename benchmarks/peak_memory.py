"""Peak-memory measurement shared by the benchmarks (run each measurement in its own process).

On CUDA: ``torch.cuda.max_memory_allocated`` above what is allocated at :func:`start`. On CPU:
the peak resident set (``VmHWM``, reset through ``/proc/self/clear_refs``) above the resident
set at :func:`start` (Linux only).
"""

from __future__ import annotations

from pathlib import Path

import torch


def _proc_status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def start(device: torch.device) -> int:
    """Reset the peak counter; returns the baseline in bytes."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        return torch.cuda.memory_allocated(device)
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
    return _proc_status_kib("VmRSS") * 1024


def peak_mib(device: torch.device, base: int) -> float:
    """Peak memory since :func:`start`, MiB above ``base``."""
    if device.type == "cuda":
        return (torch.cuda.max_memory_allocated(device) - base) / 2**20
    return (_proc_status_kib("VmHWM") * 1024 - base) / 2**20
