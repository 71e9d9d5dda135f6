"""Real-frames check of completion: does it make a sparse map of real Kinect frames better?

Every 5th of frames 0-99 of 7-Scenes RedKitchen (``$SSR_SHARED_DIR/data/7scenes_tsdf_fusion``,
default ``<repo>/../shared/data``) is fused through ``MappingPipeline`` at 5 cm and completed;
the map's fusion-only mesh and its completed mesh are scored against the fusion-only mesh of
all 500 frames: precision, recall and F-score at 5 cm, plus triangle counts. Completion that
helps keeps the precision and raises the recall.

    python benchmarks/bench_completion_real.py [--weights W] [--out results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def default_sequence() -> Path:
    return Path(os.environ.get("SSR_SHARED_DIR", REPO.parent / "shared")) / "data" / "7scenes_tsdf_fusion" / "data"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=default_sequence(), help="recording (default: 7-Scenes RedKitchen)")
    parser.add_argument("--weights", default="", help="completion weights (default: the packaged model)")
    parser.add_argument("--min-confidence", type=float, default=0.0,
                        help="completion.min_confidence (default 0: the threshold calibrated with the weights)")
    parser.add_argument("--gravity", choices=["estimate", "z_up"], default="estimate",
                        help="map the sparse run gravity-aligned (as ssr reconstruct does) or in the recording's frame")
    parser.add_argument("--no-objects", action="store_true",
                        help="leave out the object refinement that ssr reconstruct runs after completion")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = default)")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args(argv)

    import torch

    from ssr_ros.completion_evaluation import RealFramesConfig, evaluate_real_frames, real_frames_table
    from ssr_ros.completion.inference import CompletionConfig
    from ssr_ros.completion.weights import default_weights_path

    if not args.data.exists():
        print(f"recording '{args.data}' not found (set SSR_SHARED_DIR or pass --data)", file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    config = RealFramesConfig(gravity=args.gravity)
    completion = CompletionConfig(weights=str(args.weights or default_weights_path()), min_confidence=args.min_confidence)
    result = evaluate_real_frames(args.data, completion, config, objects=not args.no_objects)
    result["machine"] = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                         "torch": torch.__version__, "threads": torch.get_num_threads()}
    result["weights"] = completion.weights
    print(f"{result['frames_used']} frames (every {config.stride}th of 0-{config.sparse_frames - 1}) vs the fusion of "
          f"{config.reference_frames} frames ({result['reference']['triangles']:,} triangles); "
          f"{result['chunks_completed']} chunks completed; objects {result['objects']}")
    print(real_frames_table(result))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
