#!/usr/bin/env bash
# DAFF-GAN's two-stage synthesis end to end at CPU size, on the bundled sample:
#   1. centroid-point maps of randomised real masks (histo-gan synthesize --method centroids),
#   2. stage 1: G1 trained on (centroids, mask) pairs of the real data; predict turns the
#      centroid maps into masks and instances (exported as a synthetic dataset),
#   3. stage 2: G2 trained on (mask, H&E) pairs; predict turns stage 1's instance maps into H&E
#      (exported with exactly those label maps),
#   4. a sample grid centroids | mask | H&E, which also checks the label maps are exact.
# Usage: experiments/daff_pipeline.sh [pix2pixhd|daffgan] [extra histo-gan arguments for fit/predict]
# Environment: DAFF_OUT (default runs/daff_tiny), DAFF_N (centroid maps, 16), DAFF_SIZE (64).
# The result, $DAFF_OUT/<generator>, is a synthetic dataset for --data.synthetic.root.
set -euo pipefail
cd "$(dirname "$0")/.."
generator=${1:-pix2pixhd}; shift || true
case $generator in
  pix2pixhd) override=() ;;
  daffgan) override=(--config conf/model/daffgan_generator_tiny.yaml) ;;
  *) echo "usage: $0 [pix2pixhd|daffgan] [histo-gan arguments]" >&2; exit 2 ;;
esac
out=${DAFF_OUT:-runs/daff_tiny}
run() { ${HISTO_GAN:-.venv/bin/histo-gan} "$@"; }
export_to() {  # the SyntheticExport callback of a predict run
  echo "--trainer.callbacks+=histo_gan.callbacks.SyntheticExport" \
    "--trainer.callbacks.root=$1" "--trainer.callbacks.method=$2" "--trainer.callbacks.prefix=$3"
}

rm -rf "$out/centroids" "$out/${generator}_masks" "$out/$generator"
run synthesize --method centroids --source histo_gan/sample_data/images \
  --masks histo_gan/sample_data/labels --out "$out/centroids" \
  --n "${DAFF_N:-16}" --size "${DAFF_SIZE:-64}" --seed 0

stage1=(--config conf/experiment/pix2pixhd_stage1_tiny.yaml "${override[@]}" --name "${generator}_stage1_tiny")
run fit "${stage1[@]}" "$@"
# shellcheck disable=SC2046
run predict "${stage1[@]}" --ckpt_path last \
  --data.predict_source histo_gan.data.SyntheticFolder --data.predict_source.root "$out/centroids" \
  $(export_to "$out/${generator}_masks" "$generator-stage1" "m-") "$@"

stage2=(--config conf/experiment/pix2pixhd_stage2_tiny.yaml "${override[@]}" --name "${generator}_stage2_tiny")
run fit "${stage2[@]}" "$@"
# shellcheck disable=SC2046
run predict "${stage2[@]}" --ckpt_path last \
  --data.predict_source histo_gan.data.SyntheticFolder --data.predict_source.root "$out/${generator}_masks" \
  $(export_to "$out/$generator" "$generator" "") "$@"

${PYTHON:-.venv/bin/python} experiments/daff_grid.py "$out/centroids" "$out/${generator}_masks" \
  "$out/$generator" --out "$out/${generator}_grid.png"
