#!/bin/bash
# The tiny model's image path with backbone pose pretraining, on a lent GPU machine (models/README.md,
# "Twelfth session"): in the repository root, with a packed training cache in .devcarry/PACKED
# (scripts/cache_transport.py pack), the body model's cache file in .devcarry/mcache/body/ and wheels of
# roma, platformdirs and efficientnet-lite-pytorch in .whl/ (the machine has torch, lightning, opencv).
# 1. `moro train backbone` (the throwaway mesh-regression head; no --val-data here: watch l1_mm in
#    backbone_metrics.csv, and score the result with benchmarks/image_pose.py back home);
# 2. image_pretrain from INIT (a motion_pretrain model, default runs/m13's, carried in .devcarry) with the
#    pretrained backbone at its own smaller lr; its `pose_check` says whether the pose is read;
# 3. a video stage. Models come back split in 15 MiB parts, with every metrics.csv. Mind the 64 MiB carry
#    cap (repository ~31 MB + PACKED + INIT): pack fewer sequences if it does not fit.
# BB_WEIGHTS=FILE skips step 1 and starts the image stage's backbone from FILE (an earlier backbone.pt);
# PRE="command" runs after the setup (e.g. to restore files carried in a smaller form).
source scripts/gpu_setup.sh
if [ -n "${PRE:-}" ]; then eval "$PRE"; fi
INIT=${INIT:-.devcarry/motion_pretrain.ckpt}  # copy runs/m13/motion_pretrain/model.ckpt there (21 MB)
if [ -z "${BB_WEIGHTS:-}" ]; then
python3 -m moro train backbone --data /tmp/cache --tokenizer models/tokenizer_tiny.ckpt --out /tmp/bb \
  --steps ${BB_STEPS:-6000} --batch ${BB_BATCH:-128} --lr 3e-4 --head-lr 1e-3 --max-minutes ${BB_MIN:-4} \
  --threads 4 --no-progress 2>&1 | grep -v "^INFO" | tail -n 5
cp /tmp/bb/metrics.csv $OUT/backbone_metrics.csv || true
cp /tmp/bb/backbone.pt $OUT/ || true
BB_WEIGHTS=/tmp/bb/backbone.pt
fi
python3 -m moro train image_pretrain --preset tiny --init $INIT --data /tmp/cache --tokenizer models/tokenizer_tiny.ckpt \
  --backbone-weights $BB_WEIGHTS --backbone-lr 1e-4 --batch 64 --lr 1e-3 --warmup 100 \
  --steps ${IMG_STEPS:-3000} --max-minutes ${IMG_MIN:-3} --workers 12 --threads 4 --no-progress --out /tmp/run \
  2>&1 | grep -v "^INFO" | tail -n 15
cp /tmp/run/image_pretrain/metrics.csv $OUT/image_metrics.csv || true
python3 -m moro train video_train --preset tiny --init /tmp/run/image_pretrain/model.ckpt --data /tmp/cache \
  --tokenizer models/tokenizer_tiny.ckpt --batch 4 --clip-frames 60 --lr 3e-4 --warmup 100 \
  --steps ${VID_STEPS:-1500} --max-minutes ${VID_MIN:-2.5} --workers 12 --threads 4 --no-progress \
  --out /tmp/run 2>&1 | grep -v "^INFO" | tail -n 15
cp /tmp/run/video_train/metrics.csv $OUT/video_metrics.csv || true
cd $OUT && split -b 15M -d /tmp/run/image_pretrain/model.ckpt image_model.part
split -b 15M -d /tmp/run/video_train/model.ckpt video_model.part
ls -la $OUT
