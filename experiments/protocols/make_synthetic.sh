#!/usr/bin/env bash
# The synthetic datasets of the CPU protocols, made from main.json's 15 training images only
# (links in runs/protocols/sources/main; never a validation or test image):
#   runs/protocols/synthetic/hou       initial `hou` synthesis, 1024 patches of 256 px (the
#                                      128-px and the converged 192-px protocols crop them)
#   runs/protocols/synthetic/cyclegan  (random mask, CycleGAN H&E) pairs, 256 of 128 px
#   runs/protocols/synthetic/pix2pixhd (label map, H&E) pairs of the two-stage pix2pixHD chain,
#   runs/protocols/synthetic/daffgan   ... and of DAFF-GAN's; 512 of 128 px each
#                                      (DAFF_SCALE=cpu experiments/daff_pipeline.sh)
#   runs/protocols/synthetic/hou2017   the 512 `hou` patches refined by the hou2017 refiner,
#   runs/protocols/synthetic/hou2019   ... and by the hou2019 refiner, importance-weighted
#   runs/protocols/synthetic/hou2019_no_importance  ... by hou2019 without importance weights
#                                      (experiments/protocols/hou_refiners/; needs `hou` first)
#   runs/protocols/synthetic/diffusion (mask, H&E) pairs of the mask-conditioned diffusion model,
#                                      256 of 192 px from masks of the training images' nucleus
#                                      shapes (experiments/protocols/diffusion/cpu.yaml; trains
#                                      it first unless a finished run is there)
# Usage: experiments/protocols/make_synthetic.sh [hou|cyclegan|pix2pixhd|daffgan|hou2017|hou2019|
#                                                 hou2019_no_importance|diffusion]...
#   (default: hou cyclegan)
set -euo pipefail
cd "$(dirname "$0")/../.."
histo_gan=${HISTO_GAN:-.venv/bin/histo-gan}
python=${PYTHON:-.venv/bin/python}
out=runs/protocols/synthetic

$python experiments/protocols/split_images.py experiments/splits/main.json \
  ../shared/data/monuseg/train/images runs/protocols/sources/main
[ $# -gt 0 ] || set -- hou cyclegan
for what in "$@"; do
  case $what in
    hou)
      "$histo_gan" synthesize --source runs/protocols/sources/main --out "$out/hou" \
        --method hou --n 1024 --size 256 --seed 0 --workers 1 ;;
    cyclegan)
      config=experiments/protocols/mahmood2019/cyclegan_cpu.yaml
      rm -rf "$out/cyclegan"   # a fresh export for this CycleGAN
      "$histo_gan" fit --config "$config"
      "$histo_gan" predict --config "$config" --ckpt_path last ;;
    pix2pixhd|daffgan)
      DAFF_SCALE=cpu DAFF_OUT=$out HISTO_GAN=$histo_gan PYTHON=$python experiments/daff_pipeline.sh "$what" ;;
    hou2017|hou2019|hou2019_no_importance)
      configs=()
      for stage in data hou2017 hou2019 hou2019_no_importance; do
        configs+=(--config "experiments/protocols/hou_refiners/${stage}_cpu.yaml")
        [ "$stage" = "$what" ] && break
      done
      rm -rf "${out:?}/$what"   # a fresh export for this refiner
      "$histo_gan" fit "${configs[@]}"
      "$histo_gan" predict "${configs[@]}" --ckpt_path last ;;
    diffusion)
      # the training images' label maps: the nucleus-shape dictionary of the predict masks
      $python experiments/protocols/split_images.py experiments/splits/main.json \
        ../shared/data/monuseg/train/instance_masks runs/protocols/sources/main_label_maps
      HISTO_GAN=$histo_gan PYTHON=$python experiments/protocols/diffusion/train_cpu.sh
      rm -rf "${out:?}/diffusion"   # a fresh export for this model
      "$histo_gan" predict --config experiments/protocols/diffusion/cpu.yaml --ckpt_path last ;;
    *) echo "usage: $0 [hou|cyclegan|pix2pixhd|daffgan|hou2017|hou2019|hou2019_no_importance|diffusion]..." >&2
       exit 2 ;;
  esac
done
