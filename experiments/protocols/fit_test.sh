#!/usr/bin/env bash
# One protocol trial: `histo-gan fit ARGS`, then `histo-gan test ARGS` on the fit's best
# checkpoint. The test run folder holds what `histo-gan report` reads (test_metrics.json,
# test_metrics_per_image.csv, config.yaml, split.json). Used as the program of the sweeps in
# experiments/sweeps/ (W&B passes the trial's parameters as --key=value arguments).
set -euo pipefail
cd "$(dirname "$0")/../.."
histo_gan=${HISTO_GAN:-.venv/bin/histo-gan}
[ -x "$histo_gan" ] || histo_gan=histo-gan
final=${HISTO_GAN_SUMMARY:-}
fit_summary=$(mktemp)
trap 'rm -f "$fit_summary"' EXIT

HISTO_GAN_SUMMARY=$fit_summary "$histo_gan" fit "$@"
# best.ckpt when validation ran, else last.ckpt of the same run.
checkpoint=$(python3 -c '
import json, pathlib, sys
s = json.load(open(sys.argv[1]))
run = pathlib.Path(s["run_dir"]) / "checkpoints"
print(s.get("best_model_path") or run / "last.ckpt")' "$fit_summary")
if [ -n "$final" ]; then export HISTO_GAN_SUMMARY=$final; fi
"$histo_gan" test "$@" --ckpt_path "$checkpoint"
