"""Latency of the completion network on this machine: 32^3 chunk, a batch of 8, a 64^3 chunk.

Times a forward pass of the packaged network (or ``--weights``) on random inputs, median of
``--repeats`` after two warm-ups, for each thread count given; on CUDA (``--device cuda``) in
float32 and float16; averaged over each of ``--symmetries`` chunk symmetries (1: the chunk alone;
8: the pipeline's default, the network on eight copies of every chunk), through the pipeline's
forward pass (:func:`ssr_ros.completion.graphs.network_forward`: on the CPU channels-last, in
passes of about eight 32^3 chunks; on a GPU without CUDA graphs). Prints a markdown table.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time


def time_forward(model, batch: int, size: int, device, repeats: int, half: bool = False, symmetries: int = 1) -> float:
    import torch

    from ssr_ros.completion.graphs import chunks_per_pass, network_forward
    from ssr_ros.completion.symmetry import symmetric_forward

    geometry = torch.rand(batch, 2, size, size, size, device=device)
    color = torch.rand(batch, model.config.color_channels, size, size, size, device=device) if model.config.use_color else None
    forward = network_forward(model, device, "fp16" if half else "fp32", cuda_graphs=False)
    per_pass = chunks_per_pass(device, size ** 3)
    times = []
    with torch.no_grad():
        for i in range(repeats + 2):
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            symmetric_forward(forward, geometry, color, 0.2, symmetries, per_pass)
            if device.type == "cuda":
                torch.cuda.synchronize()
            if i >= 2:
                times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", default="", help="weights (default: the packaged model)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="CPU thread counts to time")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--symmetries", type=int, nargs="+", default=[1, 8], choices=[1, 2, 4, 8],
                        help="chunk symmetries averaged (completion.symmetries) to time")
    args = parser.parse_args(argv)

    import torch

    from ssr_ros.completion.weights import default_weights_path, load_model

    device = torch.device(args.device)
    model = load_model(args.weights or default_weights_path(), device, expected_type="ssr_unet")
    print("| device | threads | precision | symmetries | 32^3 chunk (s) | batch of 8 x 32^3 (s) | 64^3 chunk (s) |")
    print("|---|---|---|---|---|---|---|")
    for threads in (args.threads if device.type == "cpu" else [torch.get_num_threads()]):
        torch.set_num_threads(threads)
        for half in ([False, True] if device.type == "cuda" else [False]):
            for n in args.symmetries:
                row = [time_forward(model, b, size, device, args.repeats, half, n) for b, size in ((1, 32), (8, 32), (1, 64))]
                print(f"| {args.device} | {threads} | {'fp16' if half else 'fp32'} | {n} | " + " | ".join(f"{t:.4f}" for t in row) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
