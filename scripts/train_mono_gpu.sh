#!/usr/bin/env bash
# Train the monocular network on a CUDA machine in one command. Two runs, each about 9-10 minutes
# on one H100 with 16 CPU cores (the images are rendered first by data.workers processes):
#
#   scripts/train_mono_gpu.sh OUT_DIR              the first run: config/training/mono_gpu.yaml (base
#       width 16, from the weights before) and mono_gpu_wide.yaml (base width 24, from scratch) side
#       by side on the one GPU, 300 s of optimisation each; OUT_DIR/{mono,mono_wide}/
#   scripts/train_mono_gpu.sh --continue OUT_DIR   the shipped weights trained on: stage 1
#       mono_gpu_continue_b64.yaml (160 s) from models/mono_small.pt, stage 2
#       mono_gpu_continue_round2.yaml (200 s) from stage 1's weights; OUT_DIR/{stage1,stage2}/
#
# Each run writes model.pt and log.jsonl per training and OUT_DIR/train_mono_gpu.log; the image
# cache and checkpoints stay in WORK_DIR (default /tmp/ssr_train_mono_gpu). The real sequences
# are read from $SSR_SHARED_DIR/data (default ../shared/data). Needs python3 with torch (CUDA),
# numpy, scipy, pyyaml, pillow, plyfile and tqdm.
set -uo pipefail
MODE=first
if [ "${1:-}" = "--continue" ]; then MODE=continue; shift; fi
OUT_DIR=$(mkdir -p "${1:?usage: scripts/train_mono_gpu.sh [--continue] OUT_DIR}" && cd "$1" && pwd)
WORK_DIR=${WORK_DIR:-/tmp/ssr_train_mono_gpu}
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
ssr() { python3 -m ssr_ros.cli.main "$@"; }
if [ "$MODE" = first ]; then RUNS="mono mono_wide"; else RUNS="stage1 stage2"; fi
for run in $RUNS; do mkdir -p "$WORK_DIR/$run" "$OUT_DIR/$run"; done
{
  if [ "$MODE" = first ]; then
    ssr train-mono config/training/mono_gpu.yaml --out "$WORK_DIR/mono" --prepare-only
    ln -f "$WORK_DIR/mono/images.pt" "$WORK_DIR/mono_wide/images.pt"
    ssr train-mono config/training/mono_gpu.yaml --out "$WORK_DIR/mono" --no-progress &
    ssr train-mono config/training/mono_gpu_wide.yaml --out "$WORK_DIR/mono_wide" --no-progress &
    wait
  else
    # stage 2 starts from stage 1's weights: its config names them under out/, here they are in WORK_DIR
    python3 - "$WORK_DIR" <<'PY'
import sys, yaml
config = yaml.safe_load(open("config/training/mono_gpu_continue_round2.yaml"))
config["init_weights"] = f"{sys.argv[1]}/stage1/model.pt"
yaml.safe_dump(config, open(f"{sys.argv[1]}/stage2.yaml", "w"))
PY
    ssr train-mono config/training/mono_gpu_continue_b64.yaml --out "$WORK_DIR/stage1" --prepare-only
    ln -f "$WORK_DIR/stage1/images.pt" "$WORK_DIR/stage2/images.pt"
    ssr train-mono config/training/mono_gpu_continue_b64.yaml --out "$WORK_DIR/stage1" --no-progress &&
      ssr train-mono "$WORK_DIR/stage2.yaml" --out "$WORK_DIR/stage2" --no-progress
  fi
} 2>&1 | tee "$OUT_DIR/train_mono_gpu.log"
for run in $RUNS; do cp "$WORK_DIR/$run/model.pt" "$WORK_DIR/$run/log.jsonl" "$OUT_DIR/$run/" 2>/dev/null; done
ls -la "$OUT_DIR"/*
