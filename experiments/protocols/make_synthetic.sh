#!/usr/bin/env bash
# The synthetic datasets of the CPU protocols, made from main.json's 15 training images only
# (links in runs/protocols/sources/main; never a validation or test image):
#   runs/protocols/synthetic/hou       initial `hou` synthesis, 512 patches of 128 px
#   runs/protocols/synthetic/cyclegan  (random mask, CycleGAN H&E) pairs, 256 of 128 px
# Usage: experiments/protocols/make_synthetic.sh [hou|cyclegan]...  (default: both)
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
        --method hou --n 512 --size 128 --seed 0 --workers 1 ;;
    cyclegan)
      config=experiments/protocols/mahmood2019/cyclegan_cpu.yaml
      rm -rf "$out/cyclegan"   # a fresh export for this CycleGAN
      "$histo_gan" fit --config "$config"
      "$histo_gan" predict --config "$config" --ckpt_path last ;;
    *) echo "usage: $0 [hou|cyclegan]..." >&2; exit 2 ;;
  esac
done
