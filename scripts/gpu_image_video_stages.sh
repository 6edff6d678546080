#!/bin/bash
# The tenth session's GPU run (models/README.md, "Tenth session"; runs/g10, not shipped): on a lent GPU machine,
# in the repository root, with a packed training cache in .devcarry/PACKED (scripts/cache_transport.py pack),
# the body model's cache file in .devcarry/mcache/body/ and wheels of roma, platformdirs and
# efficientnet-lite-pytorch in .whl/ (the machine has torch, lightning, opencv). Continues the shipped file's
# image stage on that cache, then runs a new video stage; the two models come back split in 15 MiB parts.
source scripts/gpu_setup.sh
# the image stage continues an image_pretrain model: relabel the shipped (video_train) file's recorded stage
python3 - <<'PY'
import torch
c = torch.load("src/moro/assets/moro_tiny.ckpt", map_location="cpu", weights_only=False)
c["training"]["stage"] = "image_pretrain"
torch.save(c, "/tmp/init_image.ckpt")
PY
python3 -m moro train image_pretrain --preset tiny --init /tmp/init_image.ckpt --data /tmp/cache \
  --tokenizer models/tokenizer_tiny.ckpt --batch 64 --lr 3e-4 --warmup 100 --steps ${IMG_STEPS:-2000} --max-minutes ${IMG_MIN:-4.2} \
  --workers 12 --threads 4 --no-progress --out /tmp/run 2>&1 | grep -v "^INFO" | tail -n 15
cp /tmp/run/image_pretrain/metrics.csv $OUT/image_metrics.csv || true
python3 -m moro train video_train --preset tiny --init /tmp/run/image_pretrain/model.ckpt --data /tmp/cache \
  --tokenizer models/tokenizer_tiny.ckpt --batch 4 --clip-frames 60 --lr 3e-4 --warmup 100 --occluder-prob 0.5 \
  --occluder-size 0.5 1.0 --steps ${VID_STEPS:-1500} --max-minutes ${VID_MIN:-3.6} --workers 12 --threads 4 --no-progress \
  --out /tmp/run 2>&1 | grep -v "^INFO" | tail -n 15
cp /tmp/run/video_train/metrics.csv $OUT/video_metrics.csv || true
cd $OUT && split -b 15M -d /tmp/run/image_pretrain/model.ckpt image_model.part && split -b 15M -d /tmp/run/video_train/model.ckpt video_model.part
ls -la $OUT
