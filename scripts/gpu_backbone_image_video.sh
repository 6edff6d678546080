#!/bin/bash
# The tiny model's image path with backbone pose pretraining, on a lent GPU machine (models/README.md,
# "Twelfth" to "Fourteenth session"): in the repository root, with a packed training cache in .devcarry/PACKED
# (scripts/cache_transport.py pack), the body model's cache file in .devcarry/mcache/body/ and wheels of
# roma, platformdirs and efficientnet-lite-pytorch in .whl/ (the machine has torch, lightning, opencv).
# 1. `moro train backbone` (the throwaway mesh-regression head; target both, root rotation weighted by
#    BB_ROT_W; from BB_START, an earlier backbone.pt, else ImageNet weights); with VAL_PACK (a packed
#    validation cache) its held-out mesh and root-rotation errors are printed every BB_EVAL steps;
#    with MOTION_MIN > 0 a motion_pretrain run continues INIT at the same time (batch MOTION_BATCH clips)
#    and the image stage starts from it;
# 2. image_pretrain from INIT (a motion_pretrain model, default runs/m13's, carried in .devcarry) with the
#    pretrained backbone at its own smaller lr; its `pose_check` says whether the pose is read;
# 3. a video stage (VID_MIN=0 skips it: run scripts/gpu_video_stage.sh on the still-warm machine).
# Models come back split in 15 MiB parts, with every metrics.csv. Mind the 64 MiB carry cap (repository
# ~31 MB + PACKED + INIT): pack fewer sequences if it does not fit.
# BB_WEIGHTS=FILE skips step 1 and starts the image stage's backbone from FILE (an earlier backbone.pt);
# PRE="command" runs after the setup (e.g. to restore files carried in a smaller form).
source scripts/gpu_setup.sh
if [ -n "${PRE:-}" ]; then eval "$PRE"; fi
INIT=${INIT:-.devcarry/motion_pretrain.ckpt}  # copy runs/m13/motion_pretrain/model.ckpt there (21 MB)
MOTION_PID=
if [ "${MOTION_MIN:-0}" != "0" ]; then
  python3 -m moro train motion_pretrain --preset tiny --init $INIT --data /tmp/cache --tokenizer models/tokenizer_tiny.ckpt \
    --batch ${MOTION_BATCH:-32} --lr ${MOTION_LR:-5e-4} --warmup 100 --steps ${MOTION_STEPS:-20000} \
    --max-minutes $MOTION_MIN --workers 4 --threads 4 --no-progress --out /tmp/mrun > /tmp/motion.log 2>&1 &
  MOTION_PID=$!
fi
if [ -z "${BB_WEIGHTS:-}" ]; then
VAL_ARGS=
if [ -n "${VAL_PACK:-}" ]; then
  python3 scripts/cache_transport.py unpack $VAL_PACK /tmp/val --workers 8 > /dev/null
  VAL_ARGS="--val-data /tmp/val --eval-every ${BB_EVAL:-500}"
fi
python3 -m moro train backbone --data /tmp/cache --tokenizer models/tokenizer_tiny.ckpt --out /tmp/bb \
  ${BB_START:+--start-weights $BB_START} --rotation-weight ${BB_ROT_W:-1} $VAL_ARGS \
  --steps ${BB_STEPS:-6000} --batch ${BB_BATCH:-128} --lr 3e-4 --head-lr 1e-3 --max-minutes ${BB_MIN:-4} \
  --workers 12 --threads 4 --no-progress 2>&1 | grep -v "^INFO" | tail -n 12
cp /tmp/bb/metrics.csv $OUT/backbone_metrics.csv || true
cp /tmp/bb/backbone.pt $OUT/ || true
BB_WEIGHTS=/tmp/bb/backbone.pt
fi
if [ -n "$MOTION_PID" ]; then
  wait $MOTION_PID; grep -v "^INFO" /tmp/motion.log | tail -n 6
  cp /tmp/mrun/motion_pretrain/metrics.csv $OUT/motion_metrics.csv || true
  INIT=/tmp/mrun/motion_pretrain/model.ckpt
fi
python3 -m moro train image_pretrain --preset tiny --init $INIT --data /tmp/cache --tokenizer models/tokenizer_tiny.ckpt \
  --backbone-weights $BB_WEIGHTS --backbone-lr 1e-4 --batch 64 --lr 1e-3 --warmup 100 \
  --steps ${IMG_STEPS:-3000} --max-minutes ${IMG_MIN:-3} --workers 12 --threads 4 --no-progress --out /tmp/run \
  2>&1 | grep -v "^INFO" | tail -n 15
cp /tmp/run/image_pretrain/metrics.csv $OUT/image_metrics.csv || true
(cd $OUT && split -b 15M -d /tmp/run/image_pretrain/model.ckpt image_model.part)
if [ "${VID_MIN:-2.5}" != "0" ]; then
  VID_MIN=${VID_MIN:-2.5} bash scripts/gpu_video_stage.sh
fi
ls -la $OUT
