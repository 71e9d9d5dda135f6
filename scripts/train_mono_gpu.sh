#!/usr/bin/env bash
# Train the monocular network on a CUDA machine in one command (about 9 minutes on one H100 with
# 16 CPU cores): the images of config/training/mono_gpu.yaml are rendered once (data.workers
# processes), then that config (base width 16, from the shipped weights) and mono_gpu_wide.yaml
# (base width 24, from scratch) train side by side on the one GPU, 300 s of optimisation each.
# Writes OUT_DIR/{mono,mono_wide}/{model.pt,log.jsonl} and OUT_DIR/train_mono_gpu.log; the image
# cache and checkpoints stay in WORK_DIR (default /tmp/ssr_train_mono_gpu). The real sequences are
# read from $SSR_SHARED_DIR/data (default ../shared/data). Needs python3 with torch (CUDA), numpy,
# scipy, pyyaml, pillow and tqdm: scripts/train_mono_gpu.sh OUT_DIR
set -uo pipefail
OUT_DIR=$(mkdir -p "${1:?usage: scripts/train_mono_gpu.sh OUT_DIR}" && cd "$1" && pwd)
WORK_DIR=${WORK_DIR:-/tmp/ssr_train_mono_gpu}
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
ssr() { python3 -m ssr_ros.cli.main "$@"; }
mkdir -p "$WORK_DIR/mono" "$WORK_DIR/mono_wide" "$OUT_DIR/mono" "$OUT_DIR/mono_wide"
{
  ssr train-mono config/training/mono_gpu.yaml --out "$WORK_DIR/mono" --prepare-only
  ln -f "$WORK_DIR/mono/images.pt" "$WORK_DIR/mono_wide/images.pt"
  ssr train-mono config/training/mono_gpu.yaml --out "$WORK_DIR/mono" --no-progress &
  ssr train-mono config/training/mono_gpu_wide.yaml --out "$WORK_DIR/mono_wide" --no-progress &
  wait
} 2>&1 | tee "$OUT_DIR/train_mono_gpu.log"
for run in mono mono_wide; do cp "$WORK_DIR/$run/model.pt" "$WORK_DIR/$run/log.jsonl" "$OUT_DIR/$run/" 2>/dev/null; done
ls -la "$OUT_DIR"/*
