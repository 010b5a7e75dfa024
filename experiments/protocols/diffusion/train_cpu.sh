#!/usr/bin/env bash
# Train experiments/protocols/diffusion/cpu.yaml in resumable chunks that end at epoch
# boundaries (exact resume: same data, noise and EMA as one uninterrupted run), keeping a
# copy of last.ckpt after each chunk in runs/protocols/diffusion_cpu/snapshots/epoch_<E>.ckpt
# (the checkpoints the realism measures are taken at). Run it again after an interruption:
# it continues from the newest last.ckpt.
#   experiments/protocols/diffusion/train_cpu.sh [EPOCH_AT_END_OF_EACH_CHUNK...]  (default 3 10 20)
set -euo pipefail
cd "$(dirname "$0")/../../.."
histo_gan=${HISTO_GAN:-.venv/bin/histo-gan}
python=${PYTHON:-.venv/bin/python}
config=experiments/protocols/diffusion/cpu.yaml
runs=runs/protocols/diffusion_cpu
mkdir -p "$runs/snapshots"
[ $# -gt 0 ] || set -- 3 10 20
done_epochs() {  # epochs completed by the newest last.ckpt (0 without one)
  "$python" - "$runs" <<'PY'
import sys, pathlib, torch
lasts = sorted(pathlib.Path(sys.argv[1]).glob("version_*/checkpoints/last.ckpt"), key=lambda p: p.stat().st_mtime)
print(torch.load(lasts[-1], map_location="cpu", weights_only=False)["epoch"] + 1 if lasts else 0)
PY
}
for end in "$@"; do
  have=$(done_epochs)
  [ "$have" -ge "$end" ] && continue
  resume=(); [ "$have" -gt 0 ] && resume=(--ckpt_path last)
  echo "train_cpu: epochs $have -> $end ($(date -u +%H:%M:%S))"
  "$histo_gan" fit --config "$config" --trainer.max_epochs "$end" "${resume[@]}"
  last=$(ls -t "$runs"/version_*/checkpoints/last.ckpt | head -1)
  cp "$last" "$runs/snapshots/epoch_$(printf %04d "$end").ckpt"
done
echo "train_cpu: done ($(date -u +%H:%M:%S))"
