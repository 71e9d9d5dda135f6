"""Real-frames check of completion: does it make a sparse map of real Kinect frames better?

Every 5th of frames 0-99 of 7-Scenes RedKitchen (``$SSR_SHARED_DIR/data/7scenes_tsdf_fusion``,
default ``<repo>/../shared/data``) is fused through ``MappingPipeline`` at 5 cm and completed;
the map's fusion-only mesh and its completed mesh are scored against the fusion-only mesh of
all 500 frames: precision, recall and F-score at 5 cm, plus triangle counts. Completion that
helps keeps the precision and raises the recall. ``--first-frame`` moves the sparse stretch
along the recording (the reference stays the fusion of ``--reference-frames`` from the first);
``--data`` takes any recording ``ssr reconstruct`` reads.

    python benchmarks/bench_completion_real.py [--weights W] [--out results.json]
    python benchmarks/bench_completion_real.py --first-frame 300 --out results_300.json
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
    parser.add_argument("--first-frame", type=int, default=0, help="first frame of the sparse stretch (default 0)")
    parser.add_argument("--sparse-frames", type=int, default=100, help="length of the sparse stretch, frames (default 100)")
    parser.add_argument("--stride", type=int, default=5, help="the sparse run uses every N-th frame of it (default 5)")
    parser.add_argument("--reference-frames", type=int, default=500,
                        help="the reference fuses the recording's first N frames (default 500)")
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
    config = RealFramesConfig(gravity=args.gravity, first_frame=args.first_frame, sparse_frames=args.sparse_frames,
                              stride=args.stride, reference_frames=args.reference_frames)
    completion = CompletionConfig(weights=str(args.weights or default_weights_path()), min_confidence=args.min_confidence)
    result = evaluate_real_frames(args.data, completion, config, objects=not args.no_objects)
    result["machine"] = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                         "torch": torch.__version__, "threads": torch.get_num_threads()}
    result["weights"] = completion.weights
    last = config.first_frame + config.sparse_frames - 1
    print(f"{result['frames_used']} frames (every {config.stride}th of {config.first_frame}-{last}) vs the fusion of "
          f"{config.reference_frames} frames ({result['reference']['triangles']:,} triangles); "
          f"{result['chunks_completed']} chunks completed; objects {result['objects']}")
    print(real_frames_table(result))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
