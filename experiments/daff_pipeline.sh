#!/usr/bin/env bash
# DAFF-GAN's two-stage synthesis end to end (Cheng et al. §III.A):
#   1. centroid-point maps of randomised real masks (histo-gan synthesize --method centroids),
#   2. stage 1: G1 trained on (centroids, mask) pairs of the real data; predict turns the
#      centroid maps into masks and instances (exported as a synthetic dataset),
#   3. stage 2: G2 trained on (mask, H&E) pairs; predict turns stage 1's instance maps into H&E
#      (exported with exactly those label maps),
#   4. a sample grid centroids | mask | H&E, which also checks the label maps are exact.
# Usage: experiments/daff_pipeline.sh [pix2pixhd|daffgan] [extra histo-gan arguments for fit/predict]
# DAFF_SCALE=tiny (default): CPU size on the bundled sample, 16 maps of 64 px, into runs/daff_tiny.
# DAFF_SCALE=cpu: CPU, MoNuSeg main split, the tiny widths at the budget of
#   experiments/protocols/daff_cpu.yaml, 512 maps of 128 px from the training images' label maps
#   only, into runs/protocols/synthetic (the sets of experiments/protocols/mix/*{pix2pixhd,daffgan}.yaml).
# DAFF_SCALE=paper: GPU, MoNuSeg main split (experiments/protocols/daff_monuseg.yaml), 659 maps
#   of 256 px from the training images' label maps only, into runs/daff (the synthetic sets of
#   experiments/protocols/daff_real_{pix2pixhd,daffgan}.yaml).
# DAFF_OUT, DAFF_N and DAFF_SIZE override the output folder, number and size of the maps.
# At the cpu and paper scales each stage trains in resumable chunks of at most CHUNK_MINUTES
# (experiments/protocols/chunked_fit.sh): a chain killed mid-way goes on from the stage's
# newest last.ckpt when started again (delete runs/protocols/<generator>_stage<k>_<scale> to
# train a stage afresh).
set -euo pipefail
cd "$(dirname "$0")/.."
generator=${1:-pix2pixhd}; shift || true
scale=${DAFF_SCALE:-tiny}
run() { ${HISTO_GAN:-.venv/bin/histo-gan} "$@"; }
case $scale:$generator in
  tiny:pix2pixhd|tiny:daffgan)
    out=${DAFF_OUT:-runs/daff_tiny}; n=${DAFF_N:-16}; size=${DAFF_SIZE:-64}
    images=histo_gan/sample_data/images; label_maps=histo_gan/sample_data/labels
    stage() { echo "--config conf/experiment/pix2pixhd_stage$1_tiny.yaml"; }
    override=conf/generator/daffgan_tiny.yaml ;;
  cpu:pix2pixhd|cpu:daffgan)
    out=${DAFF_OUT:-runs/protocols/synthetic}; n=${DAFF_N:-512}; size=${DAFF_SIZE:-128}
    images=../shared/data/monuseg/train/images; label_maps=$out/train_label_maps
    stage() { echo "--config conf/experiment/pix2pixhd_stage$1_tiny.yaml" \
      "--config experiments/protocols/daff_monuseg.yaml --config experiments/protocols/daff_cpu.yaml"; }
    override=conf/generator/daffgan_tiny.yaml ;;
  paper:pix2pixhd|paper:daffgan)
    out=${DAFF_OUT:-runs/daff}; n=${DAFF_N:-659}; size=${DAFF_SIZE:-256}
    images=../shared/data/monuseg/train/images; label_maps=$out/train_label_maps
    stage() { echo "--config conf/trainer/gpu.yaml --config conf/data/monuseg.yaml" \
      "--config conf/model/pix2pixhd_stage$1.yaml --config experiments/protocols/daff_monuseg.yaml"; }
    override=conf/generator/daffgan.yaml ;;
  *) echo "usage: [DAFF_SCALE=tiny|cpu|paper] $0 [pix2pixhd|daffgan] [histo-gan arguments]" >&2; exit 2 ;;
esac
if [ "$scale" != tiny ]; then  # the main split's training images' label maps only
  rm -rf "$label_maps" && mkdir -p "$label_maps"
  ${PYTHON:-.venv/bin/python} -c "import json, sys; print('\n'.join(json.load(open(sys.argv[1]))['train']))" \
    experiments/splits/main.json | while read -r stem; do
    ln -s "$(realpath ../shared/data/monuseg/train/instance_masks/"$stem".png)" "$label_maps/"; done
fi
generator_config() { [ "$generator" = daffgan ] && echo "--config $override" || true; }
export_to() {  # the SyntheticExport callback of a predict run
  echo "--trainer.callbacks+=histo_gan.callbacks.SyntheticExport" \
    "--trainer.callbacks.root=$1" "--trainer.callbacks.method=$2" "--trainer.callbacks.prefix=$3"
}

rm -rf "$out/centroids" "$out/${generator}_masks" "$out/$generator"
run synthesize --method centroids --source "$images" --masks "$label_maps" --out "$out/centroids" \
  --n "$n" --size "$size" --seed 0

# shellcheck disable=SC2046  # the option lists are split on purpose
for k in 1 2; do
  name="${generator}_stage${k}_$scale"
  source_dataset=$([ $k = 1 ] && echo "$out/centroids" || echo "$out/${generator}_masks")
  target_dataset=$([ $k = 1 ] && echo "$out/${generator}_masks" || echo "$out/$generator")
  if [ "$scale" = tiny ]; then
    run fit $(stage $k) $(generator_config) --name "$name" "$@"
  else  # resumable: started again, each stage goes on from its newest last.ckpt
    experiments/protocols/chunked_fit.sh "$name" \
      $(stage $k) $(generator_config) "$@"
  fi
  # The extra arguments come before the export: a layer that sets trainer.callbacks (such as
  # experiments/protocols/daff_curve_cpu.yaml) replaces the list, and the export must join it.
  run predict $(stage $k) $(generator_config) "$@" --name "$name" --ckpt_path last \
    --data.predict_source histo_gan.data.SyntheticFolder --data.predict_source.root "$source_dataset" \
    $(export_to "$target_dataset" "$generator-stage$k" "")
done

${PYTHON:-.venv/bin/python} experiments/daff_grid.py "$out/centroids" "$out/${generator}_masks" \
  "$out/$generator" --out "$out/${generator}_grid.png"
