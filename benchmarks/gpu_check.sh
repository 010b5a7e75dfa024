#!/usr/bin/env bash
# GPU check in one short script: every tiny experiment config fits on one GPU in the fast
# default precision (bf16-mixed where the GPU has bf16), then the training-speed benchmark
# runs its cases on the GPU (fp32-contiguous vs the fast default). Writes
# benchmarks/results/gpu_check.md (or $OUT/gpu_check.md when OUT is set).
#   bash benchmarks/gpu_check.sh            # about 5-10 minutes on one recent GPU
set -uo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-.venv/bin/python}
[ -x "$python" ] || python=python3
out=${OUT:-benchmarks/results}
mkdir -p "$out"
report=$out/gpu_check.md
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
export NO_ALBUMENTATIONS_UPDATE=1 WANDB_MODE=offline
{
  echo "# GPU check ($(date -u +%F))"
  echo
  "$python" -c 'import torch; print(f"torch {torch.__version__}, {torch.cuda.get_device_name()}, bf16 {torch.cuda.is_bf16_supported()}")'
  echo
  echo "| tiny config | fit on one GPU | precision | seconds |"
  echo "|---|---|---|---:|"
} > "$report"
status=0
for config in conf/experiment/*_tiny.yaml; do
  summary=$root/$(basename "$config" .yaml).json
  start=$(date +%s)
  if HISTO_GAN_SUMMARY=$summary "$python" -m histo_gan.cli fit --config "$config" \
      --trainer.accelerator=gpu --trainer.devices=1 --trainer.default_root_dir="$root" \
      --trainer.logger=false > "$root/log.txt" 2>&1; then
    result=ok
  else
    result="failed: $(tail -1 "$root/log.txt")"; status=1
  fi
  precision=$("$python" -c 'import json, sys; print(json.load(open(sys.argv[1])).get("precision", "?"))' "$summary" 2>/dev/null || echo "?")
  echo "| $(basename "$config") | $result | $precision | $(( $(date +%s) - start )) |" >> "$report"
done
echo >> "$report"
"$python" benchmarks/training_speed.py --accelerator gpu --steps 20 --warmup 5 --rounds 1 \
  --out "$root/speed.md" > /dev/null 2>&1 || status=1
cat "$root/speed.md" >> "$report" 2>/dev/null
cat "$report"
exit $status
