#!/usr/bin/env bash
# Mahmood et al. 2019 end to end at CPU size, on the bundled sample:
#   1. random nucleus masks (here generated on the fly by the CycleGAN config;
#      `histo-gan synthesize --method mahmood` writes them to disk for larger runs),
#   2. CycleGAN masks <-> real tissue, then export of (mask, synthetic H&E) pairs,
#   3. the spectral-norm cGAN segmenter on real + synthetic pairs, then its test.
# Usage: experiments/mahmood_pipeline.sh [extra histo-gan arguments for every step]
set -euo pipefail
cd "$(dirname "$0")/.."
run() { ${HISTO_GAN:-.venv/bin/histo-gan} "$@"; }

rm -rf runs/mahmood_cyclegan_tiny/pairs   # a fresh export for this CycleGAN
run fit --config conf/experiment/mahmood_cyclegan_tiny.yaml "$@"
# --ckpt_path last: the newest run's last.ckpt
run predict --config conf/experiment/mahmood_cyclegan_tiny.yaml --ckpt_path last "$@"
run fit --config conf/experiment/mahmood_cgan_tiny.yaml \
  --data.synthetic histo_gan.data.SyntheticFolder \
  --data.synthetic.root runs/mahmood_cyclegan_tiny/pairs --data.synthetic_ratio 0.5 "$@"
run test --config conf/experiment/mahmood_cgan_tiny.yaml \
  --ckpt_path best "$@"
