"""Score learned-regulariser weights or training checkpoints on validation rooms, to choose
which to ship without looking at the test rooms.

Same capture, crop and scores as ``benchmarks/regularizer_eval.py`` (semantic mIoU / accuracy
over the GT surface voxels the input observed, all of them, and the unobserved ones), on the
validation rooms (default seeds 1000 and 1001, never used for training or testing), with raw
fusion as the reference line.

    PYTHONPATH=. python benchmarks/regularizer_select.py out/snapshots/step-*.pt out/train_regularizer/model.pt
"""

from __future__ import annotations

import argparse
import json

import torch

from ssr_ros.config import config_from_dict
from ssr_ros.regularization.data_cost import DataCostConfig, data_cost, network_input, raw_labels
from ssr_ros.regularization.evaluation import SurfaceScores, class_labels
from ssr_ros.regularization.network import LearnedRegularizer, RegularizerNetworkConfig
from ssr_ros.regularization.scenes import RoomCaptureConfig
from ssr_ros.regularization.weights import load_regularizer


def load_candidate(path: str):
    """(model, data cost, step) of a weights file or a training checkpoint."""
    document = torch.load(path, map_location="cpu", weights_only=True)
    if "optimizer" in document:  # a training checkpoint
        config = document["config"]
        model = LearnedRegularizer(21, config_from_dict(RegularizerNetworkConfig, config["network"]))
        model.load_state_dict(document["model"])
        return model.eval(), config_from_dict(DataCostConfig, config["data_cost"]), int(document["step"])
    model = load_regularizer(path)
    return model, model.data_cost, model.metadata.get("steps")


def main() -> None:
    from benchmarks.regularizer_eval import load_room

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("candidates", nargs="+", help="weights files or checkpoints")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1000, 1001])
    parser.add_argument("--crop", type=int, default=64)
    parser.add_argument("--cache", default="out/regularizer_eval/rooms")
    args = parser.parse_args()
    capture = RoomCaptureConfig()
    rooms = [load_room(seed, capture, args, 21) for seed in args.seeds]
    raw = SurfaceScores(21)
    for room in rooms:
        raw.add(raw_labels(room.chunk), room)
    rows = [{"candidate": "raw fusion", **raw.summary()}]
    for path in args.candidates:
        model, costs, step = load_candidate(path)
        scores = SurfaceScores(21)
        for room in rooms:
            with torch.inference_mode():
                probs = torch.softmax(model(network_input(room.chunk, costs)[None]), 1)[0]
            scores.add(class_labels(probs, data_cost(room.chunk, costs)[1]), room)
        rows.append({"candidate": path, "step": step, **scores.summary()})
    for row in rows:
        cells = " ".join(f"{r} {row[r]['miou']:.1f}/{row[r]['accuracy']:.1f}" for r in ("observed", "all", "unobserved"))
        print(f"{row['candidate']} (step {row.get('step', '-')}): mIoU/acc {cells}")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
