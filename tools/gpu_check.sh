#!/usr/bin/env bash
# The GPU check (issue 24; tools/README.md): one call for a GPU owner, one table at the end.
#   1. the GPU tests (pytest -m "gpu or tensorrt": fail, not skip, where a GPU is present but a backend is unusable)
#   2. bench models at 720p and 1080p for every backend (torch, onnxruntime, tensorrt) in fp16 and fp32
#   3. a 10-s 1080p clip through `video --backend auto --size 0`, timed end to end
# Results in $OUT (default runs/gpu_check). Overrides for a CPU proof: DEVICE=cpu BACKENDS=torch,onnxruntime
# PRECISIONS=fp32 SIZES=320x240 SECONDS=1 MODELS=microast SKIP_TESTS=1.
set -o pipefail
cd "$(dirname "$0")/.." || exit 2
PY="${PYTHON:-python3}"
OUT="${OUT:-runs/gpu_check}"
DEVICE="${DEVICE:-cuda}"
BACKENDS="${BACKENDS:-torch,onnxruntime,tensorrt}"
PRECISIONS="${PRECISIONS:-fp16 fp32}"
SIZES="${SIZES:-1280x720,1920x1080}"
SECONDS_OF_VIDEO="${SECONDS:-10}"
MODELS="${MODELS:-microast}"
export STYLIZER_PATH="${STYLIZER_PATH:-../shared/weights:../shared/images}"
mkdir -p "$OUT" && rm -f "$OUT"/bench_*.json "$OUT"/video.json
status=0

if [ -z "${SKIP_TESTS:-}" ]; then
  echo "== GPU tests"
  "$PY" -m pytest -m "gpu or tensorrt" tests/realtime/test_backends.py tests/export/test_export_formats.py \
    -q -rA -p no:cacheprovider 2>&1 | tee "$OUT/gpu_tests.log" || status=1
fi

for precision in $PRECISIONS; do
  echo "== bench models $precision"
  "$PY" main.py bench models --models "$MODELS" --backend "$BACKENDS" --device "$DEVICE" --precision "$precision" \
    --sizes "$SIZES" --json "$OUT/bench_$precision.json" 2>&1 | tee "$OUT/bench_$precision.log" || status=1
done

echo "== ${SECONDS_OF_VIDEO}-s 1080p video through auto"
frames=$("$PY" -m tools.gpu_check clip ../shared/video/cutBunny.mp4 "$OUT/clip_1080p.mp4" --seconds "$SECONDS_OF_VIDEO") || status=1
start=$(date +%s.%N)
"$PY" main.py video "$OUT/clip_1080p.mp4" -o "$OUT/clip_1080p_styled.mp4" --backend auto --size 0 2>&1 \
  | tee "$OUT/video.log"
rc=$?
end=$(date +%s.%N)
[ "$rc" -eq 0 ] || status=1
"$PY" -m tools.gpu_check video "$OUT" --log "$OUT/video.log" --frames "${frames:-0}" \
  --seconds "$("$PY" -c "print($end - $start)")" --rc "$rc"

echo "== GPU check ($(date -u +%F), $("$PY" -c 'import torch; print(torch.cuda.get_device_name() if torch.cuda.is_available() else "no CUDA GPU")'))"
"$PY" -m tools.gpu_check table "$OUT" | tee "$OUT/table.txt"
exit $status
