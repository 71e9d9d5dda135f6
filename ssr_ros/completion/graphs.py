"""The completion network's forward pass: on a GPU float16 autocast and CUDA graphs, on the CPU
channels-last memory and passes of a bounded size.

The packaged network is small (about 1.2 M parameters) and deep (5 levels, three decoders):
on one chunk a GPU spends its time waiting for the CPU to launch a few hundred tiny kernels,
not computing. Capturing the forward pass once per input shape as a CUDA graph and replaying
it launches all of them at once. A graph is kept per (batch shape, truncation, precision);
its inputs are copied into the graph's own tensors and its outputs are copied out, so callers
see an ordinary function. With graphs off the forward pass runs as usual.

Graphs remove the launches, not the work of a few hundred small kernels, each reading and
writing its activations: compiling the network (``torch.compile``, inductor) fuses the
normalisations, activations and residual sums into the convolutions' neighbours, and its
kernels are captured in the graphs as the eager ones are. On one H200 a 64^3 chunk takes 2.6 ms
compiled against 6.8 ms with graphs alone (``benchmarks/RESULTS.md``), at about 35 s of compiling
per chunk batch shape, once per process: ``completion.compile``, off by default.

On the CPU (2 threads of this project's reference machine, ``benchmarks/RESULTS.md``) three
things decide the speed of the same arithmetic: the 3D convolutions run about twice as fast on
channels-last tensors (oneDNN's blocked kernels); a batch of a single chunk takes PyTorch's
slow im2col convolution instead of oneDNN's (one 32^3 chunk 0.21 s, two 0.07 s), so a lone
chunk goes through as two copies; and passes of more than about eight 32^3 chunks slow down per
chunk as their activations leave the caches (64 chunks in one pass 3.3 s, in passes of eight
1.9 s), so large batches are split.

The graphs hold the model's parameters by address: they stay valid while the parameters are
updated in place (``load_state_dict``, an optimiser step) and are captured again when the
model is moved to another device.
"""

from __future__ import annotations

import weakref
from collections import OrderedDict
from typing import Callable

import torch

from ssr_ros.completion.network import CompletionOutput

PRECISIONS = ("fp32", "fp16")
CPU_VOXELS_PER_PASS = 8 * 32 ** 3
"""The most voxels (chunks x chunk voxels) the CPU forward pass feeds the network at once."""
Forward = Callable[[torch.Tensor, "torch.Tensor | None", float], CompletionOutput]


def _autocast(device: torch.device, precision: str):
    return torch.autocast(device.type, dtype=torch.float16, enabled=precision == "fp16" and device.type == "cuda")


class GraphedForward:
    """``model(geometry, color, truncation)`` replayed from CUDA graphs (inference only).

    Keeps at most ``max_graphs`` graphs (least recently used goes first); each holds the
    activations of one batch shape in its own memory pool.
    """

    def __init__(self, model: torch.nn.Module, precision: str = "fp32", max_graphs: int = 4, warmup: int = 2) -> None:
        if precision not in PRECISIONS:
            raise ValueError(f"precision {precision!r}; expected one of {PRECISIONS}")
        self.model = model
        self.precision = precision
        self.max_graphs = max_graphs
        self.warmup = warmup
        self._graphs: OrderedDict[tuple, tuple] = OrderedDict()

    def _key(self, geometry: torch.Tensor, color: torch.Tensor | None, truncation: float) -> tuple:
        first = next(self.model.parameters())  # a moved model has new parameter addresses: a new graph
        return (tuple(geometry.shape), None if color is None else tuple(color.shape), float(truncation),
                first.device, first.data_ptr())

    def _capture(self, geometry: torch.Tensor, color: torch.Tensor | None, truncation: float) -> tuple:
        static_geometry = geometry.clone()
        static_color = None if color is None else color.clone()
        device = geometry.device
        side = torch.cuda.Stream(device)
        side.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(side), torch.no_grad(), _autocast(device, self.precision):
            for _ in range(self.warmup):  # cuDNN picks its algorithms outside the capture
                self.model(static_geometry, static_color, truncation)
        torch.cuda.current_stream(device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        # thread_local: the node fuses frames on the GPU from another thread while completion captures
        with torch.no_grad(), torch.cuda.graph(graph, capture_error_mode="thread_local"), _autocast(device, self.precision):
            static_out = self.model(static_geometry, static_color, truncation)
        return graph, static_geometry, static_color, static_out

    @torch.no_grad()
    def __call__(self, geometry: torch.Tensor, color: torch.Tensor | None, truncation: float) -> CompletionOutput:
        self.model.check_shape(geometry, color)
        key = self._key(geometry, color, truncation)
        entry = self._graphs.get(key)
        if entry is None:
            entry = self._capture(geometry, color, truncation)
            self._graphs[key] = entry
            while len(self._graphs) > self.max_graphs:
                self._graphs.popitem(last=False)
        else:
            self._graphs.move_to_end(key)
        graph, static_geometry, static_color, out = entry
        static_geometry.copy_(geometry)
        if static_color is not None:
            static_color.copy_(color)
        graph.replay()
        return CompletionOutput(
            tsdf=out.tsdf.float().clone(),
            color=None if out.color is None else out.color.float().clone(),
            semantic_logits=out.semantic_logits.float().clone(),
        )


_graphed: "weakref.WeakKeyDictionary[torch.nn.Module, dict[tuple, GraphedForward]]" = weakref.WeakKeyDictionary()
_compiled: "weakref.WeakKeyDictionary[torch.nn.Module, torch.nn.Module]" = weakref.WeakKeyDictionary()


def compiled_module(model: torch.nn.Module) -> torch.nn.Module:
    """``model`` through ``torch.compile`` (inductor, one static graph per input shape), kept with
    the model. Compiling happens at the first call of each input shape: about 35 s for the
    packaged network on a GPU machine with 16 cores."""
    if model not in _compiled:
        _compiled[model] = torch.compile(model, dynamic=False)
    return _compiled[model]


def network_forward(model: torch.nn.Module, device: torch.device, precision: str = "fp32",
                    cuda_graphs: bool = True, compiled: bool = False) -> Forward:
    """The function that runs ``model`` on ``device``: CUDA graphs (kept with the model) where
    ``device`` is a GPU and ``cuda_graphs`` is on, else the eager forward pass; float16 autocast
    on a GPU when ``precision`` is 'fp16'; on a GPU with ``compiled`` the network compiled by
    :func:`compiled_module` (inside the graphs when they are on; the CPU ignores it: compiling
    gains nothing measurable there). Outputs are float32 either way."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r}; expected one of {PRECISIONS}")
    device = torch.device(device)
    if device.type == "cpu":
        return _cpu_forward(model)
    runner = compiled_module(model) if compiled else model
    if device.type == "cuda" and cuda_graphs:
        per_model = _graphed.setdefault(model, {})
        if (precision, compiled) not in per_model:
            per_model[(precision, compiled)] = GraphedForward(runner, precision)
        return per_model[(precision, compiled)]

    def eager(geometry: torch.Tensor, color: torch.Tensor | None, truncation: float) -> CompletionOutput:
        with torch.no_grad(), _autocast(device, precision):
            out = runner(geometry, color, truncation)
        if precision == "fp16" and device.type == "cuda":
            return CompletionOutput(out.tsdf.float(), None if out.color is None else out.color.float(),
                                    out.semantic_logits.float())
        return out

    return eager


def memory_format(device: torch.device) -> torch.memory_format:
    """The memory layout the network runs fastest in on ``device``: channels-last on the CPU
    (oneDNN's blocked 3D convolutions), the plain layout elsewhere."""
    return torch.channels_last_3d if torch.device(device).type == "cpu" else torch.contiguous_format


def chunks_per_pass(device: torch.device, chunk_voxels: int) -> int | None:
    """How many chunks of ``chunk_voxels`` voxels a forward pass on ``device`` should take at
    most: on the CPU what fits :data:`CPU_VOXELS_PER_PASS` but at least two (a lone chunk runs
    slower than two), on a GPU no limit (None)."""
    if torch.device(device).type != "cpu":
        return None
    return max(2, CPU_VOXELS_PER_PASS // chunk_voxels)


def _cpu_forward(model: torch.nn.Module) -> Forward:
    """``model`` on the CPU in channels-last memory (the model is converted in place; its values
    are unchanged), in passes of at most :data:`CPU_VOXELS_PER_PASS` voxels and never of a
    single chunk."""
    channels_last = memory_format(torch.device("cpu"))
    model.to(memory_format=channels_last)

    def forward(geometry: torch.Tensor, color: torch.Tensor | None, truncation: float) -> CompletionOutput:
        model.check_shape(geometry, color)
        batch = geometry.shape[0]
        step = chunks_per_pass(torch.device("cpu"), geometry[0, 0].numel())
        parts = []
        with torch.no_grad():
            for start in range(0, batch, step):
                take = slice(start, start + step)
                g = geometry[take]
                c = None if color is None else color[take]
                count = g.shape[0]
                if count == 1:  # a lone chunk: two copies run faster than one
                    g = g.expand(2, *g.shape[1:])
                    c = None if c is None else c.expand(2, *c.shape[1:])
                g = g.contiguous(memory_format=channels_last)
                c = None if c is None else c.contiguous(memory_format=channels_last)
                out = model(g, c, truncation)
                parts.append(CompletionOutput(out.tsdf[:count], None if out.color is None else out.color[:count],
                                              out.semantic_logits[:count]))
        if len(parts) == 1:
            return parts[0]
        return CompletionOutput(
            tsdf=torch.cat([p.tsdf for p in parts]),
            color=None if parts[0].color is None else torch.cat([p.color for p in parts]),
            semantic_logits=torch.cat([p.semantic_logits for p in parts]),
        )

    return forward
