#!/bin/bash
# The tiny model's video stage on a lent GPU machine, from the image model /tmp/run/image_pretrain/model.ckpt
# that scripts/gpu_backbone_image_video.sh left (same machine, still warm; or IMAGE=FILE) on the unpacked
# cache /tmp/cache; VID_MIN minutes, VID_STEPS steps (batch 4 x 60-frame clips). The model comes back in
# 15 MiB parts under $OUT with its metrics.csv.
set -e
export PYTHONUNBUFFERED=1 PYTHONPATH=${PYTHONPATH:-/tmp/site:$PWD/src} MORO_CACHE_DIR=${MORO_CACHE_DIR:-$PWD/.devcarry/mcache}
IMAGE=${IMAGE:-/tmp/run/image_pretrain/model.ckpt}
python3 -m moro train video_train --preset tiny --init $IMAGE --data /tmp/cache \
  --tokenizer models/tokenizer_tiny.ckpt --batch 4 --clip-frames 60 --lr ${VID_LR:-3e-4} --warmup 100 \
  --steps ${VID_STEPS:-1500} --max-minutes ${VID_MIN:-2.5} --workers 12 --threads 4 --no-progress \
  --out /tmp/vrun 2>&1 | grep -v "^INFO" | tail -n 15
cp /tmp/vrun/video_train/metrics.csv $OUT/video_metrics.csv || true
(cd $OUT && split -b 15M -d /tmp/vrun/video_train/model.ckpt video_model.part)
