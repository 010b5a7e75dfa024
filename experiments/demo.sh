#!/usr/bin/env bash
# The suite's story on the bundled sample in a few CPU minutes (`make demo`; 104 s on 2 CPU
# cores with light load, 193 s with two trainings on the same cores):
#   1. synthesize: initial `hou` patches (real backgrounds + random nuclei, exact label maps),
#   2. a GAN method: the hou2019 refiner (G, D and segmenter R by Algorithm 1) at tiny size,
#      then its refined patches exported by `predict`,
#   3. the same small U-Net trained on real patches vs real + refined patches,
#   4. both tested on the held-out crop, and `histo-gan report` prints the comparison table.
# Sample grids: runs/demo/hou_initial/sample_grid.png (initial patches) and the refiner's
# runs/demo/refiner/version_0/samples/ (its training rows); tables in runs/demo/report/.
# One seed on six 256-px crops: the numbers show the pipeline works, not which arm is better
# (see experiments/results/ for that).
set -euo pipefail
cd "$(dirname "$0")/.."
export NO_ALBUMENTATIONS_UPDATE=1 WANDB_MODE=${WANDB_MODE:-offline}
hg=${HISTO_GAN:-.venv/bin/histo-gan}
out=runs/demo
initial=$out/hou_initial
refined=$out/refined
rm -rf "$out"
step() { echo; echo "== $*"; }

step "1/4 synthesize: 64 initial hou patches of 128 px"
"$hg" synthesize --source histo_gan/sample_data/images --out "$initial" \
  --method hou --n 64 --size 128 --seed 0

step "2/4 GAN: hou2019 refiner, then export the refined patches"
callbacks="[{class_path: histo_gan.callbacks.RunCheckpoint},
  {class_path: histo_gan.callbacks.SampleGrid, init_args: {every_n_epochs: 3, num_samples: 4}},
  {class_path: histo_gan.callbacks.SyntheticExport,
   init_args: {root: $refined, method: hou2019-refiner}}]"
refiner=(--config conf/experiment/hou2019_refiner_tiny.yaml --name refiner
  --trainer.default_root_dir "$out" --trainer.callbacks "$callbacks"
  --data.synthetic histo_gan.data.SyntheticFolder --data.synthetic.root "$initial"
  --data.predict_source histo_gan.data.SyntheticFolder --data.predict_source.root "$initial")
"$hg" fit "${refiner[@]}"
"$hg" predict "${refiner[@]}" --ckpt_path last

step "3/4 segmenter: real vs real + refined"
segmenter=(--config conf/experiment/baseline_unet_tiny.yaml --trainer.default_root_dir "$out"
  --trainer.max_epochs 4 --data.patches_per_epoch 32 --data.batch_size 4 --data.patch_size 96)
with_refined=(--data.synthetic histo_gan.data.SyntheticFolder
  --data.synthetic.root "$refined" --data.synthetic_ratio 0.5)
"$hg" fit "${segmenter[@]}" --name real
"$hg" fit "${segmenter[@]}" --name real_refined "${with_refined[@]}"

step "4/4 evaluate on the held-out crop and compare"
"$hg" test "${segmenter[@]}" --name real --ckpt_path best
"$hg" test "${segmenter[@]}" --name real_refined "${with_refined[@]}" --ckpt_path best
"$hg" report "$out/real" "$out/real_refined" --out "$out/report" --metrics aji,dice,pq
echo
echo "sample grids: $initial/sample_grid.png, $out/refiner/version_0/samples/"
