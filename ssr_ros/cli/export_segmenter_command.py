"""``ssr export-segmenter``: the project's small 2D segmenter as TorchScript and ONNX files."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export-segmenter",
        help="export the small 2D segmenter to TorchScript / ONNX (for segmenter.type)",
        description="Write a segmenter weights file (default: the packaged models/segmenter_small.pt) as "
        "segmenter.ts.pt (TorchScript) and segmenter.onnx (needs the 'onnx' package) for a fixed input size. "
        "The files take RGB (1, 3, H, W) float in [0, 1] and give class scores (1, N, H, W); "
        "'ssr reconstruct --segmenter FILE' and segmenter.model run them (other sizes are resized).",
    )
    parser.add_argument("--weights", help="segmenter weights (.pt, model type segmenter2d); default: the packaged one")
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--format", choices=["both", "torchscript", "onnx"], default="both")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ssr_ros.completion.weights import load_model
    from ssr_ros.errors import MapFileError
    from ssr_ros.package_files import find_package_file
    from ssr_ros.semantics.segmenter import export_segmenter

    weights = args.weights or find_package_file("models", "segmenter_small.pt")
    if weights is None:
        raise MapFileError("the packaged segmenter weights models/segmenter_small.pt were not found; give --weights")
    model = load_model(weights, "cpu", expected_type="segmenter2d")
    formats = ("torchscript", "onnx") if args.format == "both" else (args.format,)
    written = export_segmenter(model, args.out, args.height, args.width, formats)
    for kind, path in written.items():
        print(f"[export-segmenter] {kind}: {path}")
    return 0
