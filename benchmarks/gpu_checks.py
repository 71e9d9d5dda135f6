"""CUDA correctness of the map and the renderer, and completion latency on the GPU.

Run on a CUDA machine (``scripts/train_gpu.sh`` runs it first): fuses a generated room on the
CPU and on the GPU (torch kernels on both) and compares every voxel layer and the seen-free
layer; renders one chunk on both devices and compares depth and features; then times the
completion network (the packaged preset) on 32^3 and 64^3 chunks in float32 and float16, and
with ``--compile`` the 64^3 chunk through the compiled network in CUDA graphs too (about a
minute of compiling).
Prints a JSON document; exits non-zero when a comparison fails.
"""

from __future__ import annotations

import json
import sys
import time

import torch


def compare_maps() -> dict:
    from ssr_ros.completion.scenes import synthetic_sequence
    from ssr_ros.completion.training import SceneDataConfig
    from ssr_ros.map.config import TSDFConfig
    from ssr_ros.map.semantic_tsdf import SemanticTSDF

    data = SceneDataConfig(frames_per_scene=20, image_width=160, image_height=120)
    _, sequence = synthetic_sequence(5, data)
    frames = list(sequence)
    maps = {}
    for device in ("cpu", "cuda"):
        m = SemanticTSDF(TSDFConfig(backend="torch"), num_classes=21, device=device)
        for frame in frames:
            m.integrate(frame)
        maps[device] = m
    cpu, gpu = maps["cpu"], maps["cuda"]
    origin = cpu.allocated_block_coords().amin(0) * cpu.block_size
    extent = (cpu.allocated_block_coords().amax(0) + 1) * cpu.block_size - origin
    a = cpu.extract_chunk(origin, extent.tolist())
    b = gpu.extract_chunk(origin.cuda(), extent.tolist())
    result = {
        "blocks_cpu": cpu.num_blocks, "blocks_cuda": gpu.num_blocks,
        "tsdf_max_abs_diff": float((a.tsdf - b.tsdf.cpu()).abs().max()),
        "observed_mismatch": int((a.observed != b.observed.cpu()).sum()),
        "free_mismatch": int((a.free != b.free.cpu()).sum()) if a.free is not None else None,
        "voxels": int(a.tsdf.numel()),
    }
    result["ok"] = (result["blocks_cpu"] == result["blocks_cuda"] and result["tsdf_max_abs_diff"] < 1e-2
                    and result["observed_mismatch"] <= 1e-4 * result["voxels"]
                    and (result["free_mismatch"] or 0) <= 1e-4 * result["voxels"])
    return result


def compare_renderer() -> dict:
    from ssr_ros.completion.renderer import look_at, render_chunk
    from ssr_ros.geometry import CameraIntrinsics

    size = 32
    idx = torch.stack(torch.meshgrid(*[torch.arange(size, dtype=torch.float32)] * 3, indexing="ij"), -1)
    centre = torch.tensor([16.0, 16.0, 16.0])
    tsdf = ((idx - centre).norm(dim=-1) - 9.0) * 0.05
    features = torch.rand(4, size, size, size, generator=torch.Generator().manual_seed(0))
    intrinsics = CameraIntrinsics(60.0, 60.0, 39.5, 29.5, 80, 60)
    origin = torch.zeros(3)
    pose = look_at(torch.tensor([0.8, -1.5, 1.2]), torch.tensor([0.8, 0.8, 0.8])).float()
    out = {}
    for device in ("cpu", "cuda"):
        out[device] = render_chunk(tsdf.to(device), origin.to(device), 0.05, intrinsics, pose.to(device),
                                   features=features.to(device))
    hit = out["cpu"].hit & out["cuda"].hit.cpu()
    result = {
        "hit_mismatch": int((out["cpu"].hit != out["cuda"].hit.cpu()).sum()),
        "depth_max_abs_diff": float((out["cpu"].depth - out["cuda"].depth.cpu())[hit].abs().max()),
        "feature_max_abs_diff": float((out["cpu"].features - out["cuda"].features.cpu())[hit].abs().max()),
        "hits": int(hit.sum()),
    }
    result["ok"] = result["hits"] > 100 and result["hit_mismatch"] <= 3 and result["depth_max_abs_diff"] < 1e-3
    return result


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _milliseconds(forward, geometry: torch.Tensor, color: torch.Tensor, repeats: int) -> float:
    """Mean milliseconds of ``forward(geometry, color, 0.2)`` over ``repeats`` runs after 3 warm-ups."""
    for _ in range(3):
        forward(geometry, color, 0.2)
    _synchronize(geometry.device)
    start = time.perf_counter()
    for _ in range(repeats):
        forward(geometry, color, 0.2)
    _synchronize(geometry.device)
    return round((time.perf_counter() - start) / repeats * 1000, 3)


def completion_latency(repeats: int = 30) -> dict:
    """Milliseconds per forward pass of the packaged network: eager and CUDA graphs, fp32 and
    fp16, one 32^3 chunk, a batch of eight 32^3 chunks and one 64^3 chunk."""
    from ssr_ros.completion.graphs import network_forward
    from ssr_ros.completion.network import SSRUNet, preset_config

    model = SSRUNet(preset_config("small")).cuda().eval()
    device = torch.device("cuda")
    result = {}
    for batch, size in ((1, 32), (8, 32), (1, 64)):
        geometry = torch.rand(batch, 2, size, size, size, device="cuda")
        color = torch.rand(batch, 3, size, size, size, device="cuda")
        for graphs in (False, True):
            for precision in ("fp32", "fp16"):
                forward = network_forward(model, device, precision, cuda_graphs=graphs)
                name = f"b{batch}_chunk{size}_{precision}_{'graphs' if graphs else 'eager'}_ms"
                result[name] = _milliseconds(forward, geometry, color, repeats)
    return result


def latency_variants(repeats: int = 30) -> dict:
    """Milliseconds per 64^3 forward pass (CUDA graphs) in layouts and number formats the product
    does not use yet, to choose the next step: pure float16 / bfloat16 weights and activations
    (GroupNorm in that format too) and channels-last 3D memory layout."""
    import copy

    from ssr_ros.completion.graphs import GraphedForward
    from ssr_ros.completion.network import SSRUNet, preset_config

    base = SSRUNet(preset_config("small")).cuda().eval()
    geometry = torch.rand(1, 2, 64, 64, 64, device="cuda")
    color = torch.rand(1, 3, 64, 64, 64, device="cuda")
    reference = base(geometry, color, 0.2)
    result = {}
    variants = {
        "half_weights": (torch.float16, torch.contiguous_format),
        "bf16_weights": (torch.bfloat16, torch.contiguous_format),
        "fp32_channels_last": (torch.float32, torch.channels_last_3d),
        "half_channels_last": (torch.float16, torch.channels_last_3d),
    }
    for name, (dtype, layout) in variants.items():
        try:
            model = copy.deepcopy(base).to(dtype=dtype, memory_format=layout)
            g = geometry.to(dtype=dtype, memory_format=layout)
            c = color.to(dtype=dtype, memory_format=layout)
            forward = GraphedForward(model, "fp32")
            out = forward(g, c, 0.2)
            result[f"b1_chunk64_{name}_graphs_ms"] = _milliseconds(forward, g, c, repeats)
            result[f"{name}_tsdf_max_abs_diff_m"] = float((out.tsdf - reference.tsdf).abs().max())
        except Exception as error:  # a variant a GPU or torch version cannot run is reported, not fatal
            result[name] = f"failed: {type(error).__name__}: {error}"[:300]
    return result


def compiled_variants(repeats: int = 30, device: str = "cuda", size: int = 64) -> dict:
    """Milliseconds per forward pass of one ``size``^3 chunk through the product's compiled path
    (``completion.compile``: the network compiled by ``torch.compile`` and replayed in CUDA
    graphs, :func:`ssr_ros.completion.graphs.network_forward`), in float32 and under float16
    autocast, with the compile time (the first call) and the largest TSDF difference to the eager
    float32 pass. A variant that fails is reported, not fatal."""
    from ssr_ros.completion.graphs import network_forward
    from ssr_ros.completion.network import SSRUNet, preset_config

    device = torch.device(device)
    model = SSRUNet(preset_config("small")).to(device).eval()
    generator = torch.Generator(device="cpu").manual_seed(0)
    geometry = torch.rand(1, 2, size, size, size, generator=generator).to(device)
    color = torch.rand(1, 3, size, size, size, generator=generator).to(device)
    with torch.no_grad():
        reference = model(geometry, color, 0.2).tsdf.float()
    result = {}
    for precision in ("fp32", "fp16"):
        name = f"b1_chunk{size}_{precision}_compiled_graphs"
        try:
            forward = network_forward(model, device, precision, cuda_graphs=device.type == "cuda", compiled=True)
            start = time.perf_counter()
            out = forward(geometry, color, 0.2).tsdf
            _synchronize(device)
            result[f"{name}_first_call_s"] = round(time.perf_counter() - start, 1)
            result[f"{name}_ms"] = _milliseconds(forward, geometry, color, repeats)
            result[f"{name}_tsdf_max_abs_diff_m"] = float((out - reference).abs().max())
        except Exception as error:
            result[name] = f"failed: {type(error).__name__}: {error}"[:300]
    return result


def main() -> int:
    if not torch.cuda.is_available():
        print("no CUDA device", file=sys.stderr)
        return 2
    report = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__,
              "map": compare_maps(), "renderer": compare_renderer(), "latency": completion_latency(), "latency_variants": latency_variants()}
    if "--compile" in sys.argv[1:]:  # one to a few minutes of compiling
        report["compiled"] = compiled_variants()
    print(json.dumps(report, indent=1))
    return 0 if report["map"]["ok"] and report["renderer"]["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
