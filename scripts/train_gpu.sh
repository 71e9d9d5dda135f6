#!/usr/bin/env bash
# Train the completion network on a CUDA machine in one command (about 7 minutes on one H100/H200
# with 16 CPU cores): CUDA checks of the map and renderer, then `ssr train config/training/gpu.yaml`.
# Writes OUT_DIR/{gpu_checks.json, train.log} and the run (log.jsonl, model.pt, checkpoint.pt) into
# RUN_DIR (default OUT_DIR/run; with another RUN_DIR they are copied into OUT_DIR). Needs python3 with torch (CUDA),
# numpy, scipy, pyyaml, tqdm and plyfile; run from anywhere: scripts/train_gpu.sh OUT_DIR [CONFIG]
set -uo pipefail
OUT_DIR=${1:?usage: scripts/train_gpu.sh OUT_DIR [CONFIG]}
CONFIG=${2:-config/training/gpu.yaml}
cd "$(dirname "$0")/.."
mkdir -p "$OUT_DIR"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
python3 benchmarks/gpu_checks.py > "$OUT_DIR/gpu_checks.json" || echo "GPU checks failed (see $OUT_DIR/gpu_checks.json)"
cat "$OUT_DIR/gpu_checks.json"
RUN_DIR=${RUN_DIR:-$OUT_DIR/run}
python3 -m ssr_ros.cli.main train "$CONFIG" --out "$RUN_DIR" --no-progress 2>&1 | tee "$OUT_DIR/train.log"
[ "$RUN_DIR" = "$OUT_DIR/run" ] || cp "$RUN_DIR/log.jsonl" "$RUN_DIR/model.pt" "$RUN_DIR/checkpoint.pt" "$OUT_DIR/" 2>/dev/null
ls -la "$OUT_DIR"
