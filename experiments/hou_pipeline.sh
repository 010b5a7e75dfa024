#!/usr/bin/env bash
# Hou et al. end to end at CPU size, on the bundled sample:
#   1. initial synthesis (GAN-free: real backgrounds + random nuclei, exact label maps),
#   2. refine: G, D and R trained by Algorithm 1 (hou2017, or hou2019 with importance weights),
#   3. export the refined patches (initial label maps, importance weights) with `predict`,
#   4. a segmenter trained on real + refined patches (weights applied), then its test.
# Usage: METHOD=hou2017 experiments/hou_pipeline.sh [extra histo-gan arguments for step 2]
#        (METHOD: hou2019 by default; ablations: add e.g. --config conf/ablation/hou_no_reference.yaml)
set -euo pipefail
cd "$(dirname "$0")/.."
run() { ${HISTO_GAN:-.venv/bin/histo-gan} "$@"; }
config="conf/experiment/${METHOD:-hou2019}_refiner_tiny.yaml"
refined="runs/${METHOD:-hou2019}_refiner_tiny/refined"

run synthesize --source histo_gan/sample_data/images --out runs/hou_initial_tiny \
  --method hou --n 32 --size 96 --seed 0 --overwrite
initial=(--data.synthetic histo_gan.data.SyntheticFolder --data.synthetic.root runs/hou_initial_tiny
         --data.predict_source histo_gan.data.SyntheticFolder
         --data.predict_source.root runs/hou_initial_tiny)   # the dataset on disk, not on the fly
rm -rf "$refined"   # a fresh export for this refiner
run fit --config "$config" "${initial[@]}" "$@"
run predict --config "$config" "${initial[@]}" "$@" --ckpt_path last   # the newest run's last.ckpt
run fit --config conf/experiment/baseline_unet_tiny.yaml --name "${METHOD:-hou2019}_segmenter_tiny" \
  --data.synthetic histo_gan.data.SyntheticFolder --data.synthetic.root "$refined" \
  --data.synthetic_ratio 0.5 --data.patch_size 64   # the refined patches are 96 px
run test --config conf/experiment/baseline_unet_tiny.yaml --name "${METHOD:-hou2019}_segmenter_tiny" \
  --ckpt_path best
