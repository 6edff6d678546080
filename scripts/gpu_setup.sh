# Sourced by the scripts/gpu_*.sh runs on a lent GPU machine (repository root): installs the carried wheels
# (.whl/), points moro at its source and the carried body-model cache (.devcarry/mcache), and unpacks the
# packed training cache .devcarry/PACKED into /tmp/cache.
set -e
export PYTHONUNBUFFERED=1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site:$PWD/src MORO_CACHE_DIR=$PWD/.devcarry/mcache
nvidia-smi -L
python3 scripts/cache_transport.py unpack .devcarry/PACKED /tmp/cache --workers 14
