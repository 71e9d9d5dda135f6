#!/usr/bin/env bash
# Continue the monocular weights on a CUDA machine in one command (about 10 minutes on one H100
# with 16 CPU cores: 4.5 minutes to render 1,500 rooms, then two stages of 160 s and 200 s):
# stage 1 config/training/mono_gpu_continue_b64.yaml from models/mono_small.pt, stage 2
# config/training/mono_gpu_continue_round2.yaml from stage 1's weights. Writes
# OUT_DIR/{stage1,stage2}/{model.pt,log.jsonl} and OUT_DIR/train_mono_gpu_continue.log; the image
# cache and checkpoints stay in WORK_DIR (default /tmp/ssr_train_mono_gpu_continue). The real
# sequences are read from $SSR_SHARED_DIR/data (default ../shared/data). Needs python3 with torch
# (CUDA), numpy, scipy, pyyaml, pillow, plyfile and tqdm: scripts/train_mono_gpu_continue.sh OUT_DIR
set -uo pipefail
OUT_DIR=$(mkdir -p "${1:?usage: scripts/train_mono_gpu_continue.sh OUT_DIR}" && cd "$1" && pwd)
WORK_DIR=${WORK_DIR:-/tmp/ssr_train_mono_gpu_continue}
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
ssr() { python3 -m ssr_ros.cli.main "$@"; }
mkdir -p "$WORK_DIR/stage1" "$WORK_DIR/stage2" "$OUT_DIR/stage1" "$OUT_DIR/stage2"
# stage 2 starts from stage 1's weights: its config names them under out/, here they live in WORK_DIR
python3 - "$WORK_DIR" <<'PY'
import sys, yaml
config = yaml.safe_load(open("config/training/mono_gpu_continue_round2.yaml"))
config["init_weights"] = f"{sys.argv[1]}/stage1/model.pt"
yaml.safe_dump(config, open(f"{sys.argv[1]}/stage2.yaml", "w"))
PY
{
  ssr train-mono config/training/mono_gpu_continue_b64.yaml --out "$WORK_DIR/stage1" --prepare-only
  ln -f "$WORK_DIR/stage1/images.pt" "$WORK_DIR/stage2/images.pt"
  ssr train-mono config/training/mono_gpu_continue_b64.yaml --out "$WORK_DIR/stage1" --no-progress &&
    ssr train-mono "$WORK_DIR/stage2.yaml" --out "$WORK_DIR/stage2" --no-progress
} 2>&1 | tee "$OUT_DIR/train_mono_gpu_continue.log"
for run in stage1 stage2; do cp "$WORK_DIR/$run/model.pt" "$WORK_DIR/$run/log.jsonl" "$OUT_DIR/$run/" 2>/dev/null; done
ls -la "$OUT_DIR"/*
