"""The network's forward pass as CUDA graphs and in float16: same answers as the eager pass.

The CPU tests run everywhere; the CUDA tests run where a GPU is present (benchmarks/gpu_checks.py
runs this file on the GPU machine).
"""

import pytest
import torch

from ssr_ros.completion.graphs import GraphedForward, network_forward
from ssr_ros.completion.inference import CompletionConfig, predict_chunks
from ssr_ros.completion.network import SSRUNet, SSRUNetConfig
from ssr_ros.errors import ConfigError

from test_inference import FakeMap



def cuda(test):
    return pytest.mark.cuda(pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")(test))


def _model(device="cpu"):
    torch.manual_seed(0)
    return SSRUNet(SSRUNetConfig(num_classes=5, base_width=4, max_width=8, levels=3)).to(device).eval()


def _inputs(batch, size, device="cpu", seed=1):
    g = torch.Generator().manual_seed(seed)
    geometry = torch.rand(batch, 2, size, size, size, generator=g) * 2 - 1
    geometry[:, 1] = (geometry[:, 1] > 0).float()
    return geometry.to(device), torch.rand(batch, 3, size, size, size, generator=g).to(device)


def _max_diff(a, b):
    return max(float((a.tsdf - b.tsdf).abs().max()), float((a.color - b.color).abs().max()),
               float((a.semantic_logits - b.semantic_logits).abs().max()))


def test_on_the_cpu_the_forward_pass_is_the_eager_one_in_float32_whatever_is_asked():
    model = _model()
    geometry, color = _inputs(2, 8)
    with torch.no_grad():
        expected = model(geometry, color, 0.15)
    for precision in ("fp32", "fp16"):
        out = network_forward(model, torch.device("cpu"), precision, cuda_graphs=True)(geometry, color, 0.15)
        # channels-last kernels sum in another order: equal up to float32 rounding
        assert out.tsdf.dtype == torch.float32 and _max_diff(out, expected) < 1e-5


def test_on_the_cpu_a_lone_chunk_and_a_split_batch_give_what_one_pass_gives(monkeypatch):
    import ssr_ros.completion.graphs as graphs

    model = _model()
    geometry, color = _inputs(5, 8)
    with torch.no_grad():
        expected = model(geometry, color, 0.15)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    monkeypatch.setattr(graphs, "CPU_VOXELS_PER_PASS", 2 * 8 ** 3)  # passes of two chunks: 2 + 2 + 1
    assert graphs.chunks_per_pass(torch.device("cpu"), 8 ** 3) == 2
    forward = network_forward(model, torch.device("cpu"))
    split = forward(geometry, color, 0.15)
    assert split.tsdf.shape == expected.tsdf.shape and _max_diff(split, expected) < 1e-5
    alone = forward(geometry[4:], color[4:], 0.15)
    assert alone.tsdf.shape[0] == 1 and _max_diff(alone, _one_chunk(expected, 4)) < 1e-5
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # only the memory layout changed
    assert graphs.chunks_per_pass(torch.device("cuda"), 8 ** 3) is None


def _one_chunk(out, index):
    return type(out)(out.tsdf[index:index + 1], out.color[index:index + 1], out.semantic_logits[index:index + 1])


def test_on_the_cpu_compiling_is_ignored():
    import ssr_ros.completion.graphs as graphs

    model = _model()
    geometry, color = _inputs(2, 8)
    with torch.no_grad():
        expected = model(geometry, color, 0.15)
    out = network_forward(model, torch.device("cpu"), "fp32", cuda_graphs=True, compiled=True)(geometry, color, 0.15)
    assert _max_diff(out, expected) < 1e-5
    assert model not in graphs._compiled  # nothing was compiled (minutes on a CPU, for no gain)
    assert CompletionConfig().compile is False


def test_unknown_precision_is_refused_by_the_function_and_the_config():
    with pytest.raises(ValueError, match="precision"):
        network_forward(_model(), torch.device("cpu"), "int8")
    with pytest.raises(ConfigError, match="precision"):
        CompletionConfig(precision="bf16").validate()


@cuda
def test_graph_replay_matches_the_eager_pass_for_every_input_and_keeps_earlier_outputs():
    model = _model("cuda")
    forward = GraphedForward(model, "fp32")
    first_in = _inputs(2, 16, "cuda", seed=1)
    second_in = _inputs(2, 16, "cuda", seed=2)
    first = forward(*first_in, 0.15)
    kept = first.tsdf.clone()
    second = forward(*second_in, 0.15)  # the same graph, new inputs copied in
    assert len(forward._graphs) == 1
    assert _max_diff(first, model(*first_in, 0.15)) < 1e-4
    assert _max_diff(second, model(*second_in, 0.15)) < 1e-4
    assert torch.equal(first.tsdf, kept)  # outputs are copies, not the graph's own tensors
    assert float((first.tsdf - second.tsdf).abs().max()) > 1e-3


@cuda
def test_each_batch_shape_gets_its_own_graph_and_the_oldest_is_dropped():
    model = _model("cuda")
    forward = GraphedForward(model, "fp32", max_graphs=2)
    for batch in (1, 2, 3):
        geometry, color = _inputs(batch, 8, "cuda")
        assert _max_diff(forward(geometry, color, 0.15), model(geometry, color, 0.15)) < 1e-4
    assert [key[0][0] for key in forward._graphs] == [2, 3]


@cuda
def test_float16_stays_close_to_float32():
    model = _model("cuda")
    geometry, color = _inputs(2, 16, "cuda")
    expected = model(geometry, color, 0.15)
    for graphs in (False, True):
        out = network_forward(model, torch.device("cuda"), "fp16", cuda_graphs=graphs)(geometry, color, 0.15)
        assert out.tsdf.dtype == torch.float32
        assert float((out.tsdf - expected.tsdf).abs().max()) < 0.01 * 0.15 * 10
        assert float((out.semantic_logits - expected.semantic_logits).abs().max()) < 0.05


@cuda
def test_blended_region_on_the_gpu_matches_the_cpu():
    fake = FakeMap()
    origins = [(0, 0, 0), (12, 0, 0), (24, 8, 0)]
    on_cpu = predict_chunks(_model(), fake, origins, 16, 4, 2)
    on_gpu = predict_chunks(_model("cuda"), fake, origins, 16, 4, 2, device="cuda", cuda_graphs=True)
    covered = torch.isfinite(on_cpu.tsdf)
    assert torch.equal(covered, torch.isfinite(on_gpu.tsdf.cpu()))
    # cuDNN convolutions may run in TF32: agreement to a small fraction of the truncation (0.15 m)
    assert float((on_cpu.tsdf[covered] - on_gpu.tsdf.cpu()[covered]).abs().max()) < 1e-3
    assert float((on_cpu.semantics_probs - on_gpu.semantics_probs.cpu()).abs().max()) < 1e-3


@cuda
def test_the_compiled_network_in_graphs_matches_the_eager_pass():
    model = _model("cuda")
    for precision, tolerance in (("fp32", 1e-3), ("fp16", 0.01 * 0.15 * 10)):
        forward = network_forward(model, torch.device("cuda"), precision, cuda_graphs=True, compiled=True)
        assert forward is not network_forward(model, torch.device("cuda"), precision, cuda_graphs=True)
        for seed in (1, 2):  # the same graph replayed on new inputs
            geometry, color = _inputs(2, 16, "cuda", seed=seed)
            with torch.no_grad():
                expected = model(geometry, color, 0.15)
            out = forward(geometry, color, 0.15)
            assert out.tsdf.dtype == torch.float32
            assert float((out.tsdf - expected.tsdf).abs().max()) < tolerance


@cuda
def test_a_blended_region_through_the_compiled_network_matches_the_cpu():
    fake = FakeMap()
    origins = [(0, 0, 0), (12, 0, 0), (24, 8, 0)]
    on_cpu = predict_chunks(_model(), fake, origins, 16, 4, 2)
    on_gpu = predict_chunks(_model("cuda"), fake, origins, 16, 4, 2, device="cuda", cuda_graphs=True, compiled=True)
    covered = torch.isfinite(on_cpu.tsdf)
    assert torch.equal(covered, torch.isfinite(on_gpu.tsdf.cpu()))
    assert float((on_cpu.tsdf[covered] - on_gpu.tsdf.cpu()[covered]).abs().max()) < 1e-3
