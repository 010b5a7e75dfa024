"""DAFF generator vs pix2pixHD global generator: forward+backward time and peak memory.

    python benchmarks/daff_vs_pix2pixhd.py [--device cpu|cuda] [--size 256] [--reps 3]
                                          [--threads 1] [--in-channels 3]

Both at paper size (ngf 64, 4 downsamplings, 9 residual blocks; DAFF adds criss-cross
attention at 1/16 resolution and the long skip), batch 1, ``size x size`` input, one
``out.mean().backward()`` per repetition (gradients reset to None before each, so their
allocation is inside the measurement). Each model runs in its own subprocess, the baseline
first, in the same invocation. Time: median over ``--reps`` after one warm-up. Peak memory:
on CUDA ``torch.cuda.max_memory_allocated`` above what is allocated before the first measured
repetition; on CPU the peak resident set (``VmHWM``, reset through ``/proc/self/clear_refs``)
above the resident set at the same point. Prints a table and the DAFF / pix2pixHD ratios
(goal: within 1.3x).
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

ROOT = Path(__file__).resolve().parents[1]
MODELS = {"pix2pixHD global": "GlobalGenerator", "DAFF global": "DAFFGenerator"}


def measure(class_name: str, args: argparse.Namespace) -> dict:
    """Runs in the child process: build, warm up, time and measure one generator."""
    import torch

    import histo_gan.networks as networks

    sys.path.insert(0, str(Path(__file__).parent))
    import peak_memory

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    model = getattr(networks, class_name)(args.in_channels, 3).to(device)
    x = torch.rand(1, args.in_channels, args.size, args.size, device=device) * 2 - 1

    def step() -> float:
        model.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        model(x).mean().backward()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start

    step()  # warm-up
    model.zero_grad(set_to_none=True)
    base = peak_memory.start(device)
    times = [step() for _ in range(args.reps)]
    peak = peak_memory.peak_mib(device, base) * 2**20
    return {
        "parameters": sum(p.numel() for p in model.parameters()),
        "median_s": statistics.median(times),
        "times_s": times,
        "peak_mib": peak / 2**20,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--in-channels", type=int, default=3)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args)))
        return

    results = {}
    for label, class_name in MODELS.items():
        command = [sys.executable, __file__, "--child", class_name] + sys.argv[1:]
        env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "PYTHONPATH": str(ROOT)}
        out = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
        results[label] = json.loads(out.stdout.strip().splitlines()[-1])

    print(
        f"device {args.device}, batch 1, {args.size}x{args.size}, {args.in_channels} -> 3 "
        f"channels, threads {args.threads}, median of {args.reps} after 1 warm-up"
    )
    print(f"{'model':<18} {'parameters':>13} {'fwd+bwd s':>10} {'peak MiB':>10}")
    for label, r in results.items():
        print(f"{label:<18} {r['parameters']:>13,} {r['median_s']:>10.3f} {r['peak_mib']:>10.0f}")
    base, daff = results["pix2pixHD global"], results["DAFF global"]
    time_ratio = daff["median_s"] / base["median_s"]
    memory_ratio = daff["peak_mib"] / base["peak_mib"]
    print(
        f"DAFF / pix2pixHD: time {time_ratio:.2f}x, peak memory {memory_ratio:.2f}x (goal <= 1.3x)"
    )


if __name__ == "__main__":
    main()
