#!/usr/bin/env bash
# The one GPU job (tools/README.md): train AdaIN + AesFA together, then benchmark; everything into $OUT.
#   on the device:  bash tools/gpu_train.sh                       (carry: [".carry"])
#   CPU proof:      OUT=runs/cpu_proof PYTHON=.venv/bin/python bash tools/gpu_train.sh --device cpu ...
# Extra arguments go to `python -m tools.gpu_job` (see its --help).
set -o pipefail
cd "$(dirname "$0")/.." || exit 2
: "${OUT:?set OUT to the result folder}"
mkdir -p "$OUT"
PYTHONUNBUFFERED=1 "${PYTHON:-python3}" -m tools.gpu_job --inputs .carry --out "$OUT" "$@" 2>&1 | tee "$OUT/job.log"
