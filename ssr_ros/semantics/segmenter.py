"""Bring your own 2D segmenter: a TorchScript or ONNX model file labels the color frames.

The model contract: input ``rgb`` (1, 3, H, W) float32 RGB in [0, 1]; output (1, M, H, W)
class scores (logits; a softmax turns them into probabilities). A model exported for a fixed
input size gets the image resized to it and its probabilities resized back (bilinear). With
``class_map`` a yaml file maps the model's M classes onto the map's taxonomy
(``config/class_maps/*.yaml``: ``classes: {model index: taxonomy class name}``; unmapped
classes go to 'unknown', which never votes); without one the model's classes must be the
taxonomy's. The result is (H, W, N) per-class probabilities for the map, class-major in
memory (the map reads them in place).

``ssr export-segmenter`` writes the project's own small segmenter in both formats.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import yaml

from ssr_ros.config import param, validate_config
from ssr_ros.errors import ConfigError, InvalidInput, MapFileError
from ssr_ros.taxonomy import UNKNOWN_ID, ClassTaxonomy

SEGMENTER_TYPES = ("none", "onnx", "torchscript")
METADATA_FILE = "ssr_segmenter.json"
"""TorchScript extra file: {"input_size": [H, W] or null, "classes": M}."""


@dataclass
class SegmenterStageConfig:
    """A 2D segmentation model run on the color frames (the semantic source of the map)."""

    type: str = param("none", "'none', 'onnx' (onnxruntime) or 'torchscript' (torch.jit) model file", choices=list(SEGMENTER_TYPES))
    model: str = param("", "model file: RGB (1, 3, H, W) float in [0, 1] -> class scores (1, M, H, W)")
    class_map: str = param("", "yaml mapping the model's classes to the taxonomy (config/class_maps/); empty = the same classes")
    rate_hz: float = param(
        2.0, "node: segmentations per second at most, run in their own thread; frames without a fresh one "
        "integrate geometry and color only", low=0.01, high=1000.0,
    )
    device: str = param("auto", "'auto' (cuda when available), 'cpu', 'cuda' or 'cuda:N'")

    def validate(self) -> "SegmenterStageConfig":
        validate_config(self)
        if self.type != "none" and not self.model:
            raise ConfigError(f"segmenter.type '{self.type}' needs segmenter.model (a model file)")
        return self


def load_class_map(path: str | Path, taxonomy: ClassTaxonomy, model_classes: int) -> np.ndarray:
    """(M,) int64 taxonomy id of each model class from a class-map yaml."""
    try:
        document = yaml.safe_load(Path(path).read_text())
    except OSError as error:
        raise ConfigError(f"cannot read class map '{path}': {error.strerror}") from error
    if not isinstance(document, dict) or not isinstance(document.get("classes"), dict):
        raise ConfigError(f"class map '{path}' must be a mapping with 'classes: {{model index: taxonomy name}}'")
    declared = document.get("model_classes")
    if declared is not None and declared != model_classes:
        raise ConfigError(f"class map '{path}' is for a model of {declared} classes; this one gives {model_classes}")
    lookup = np.full(model_classes, UNKNOWN_ID, np.int64)
    for index, name in document["classes"].items():
        if not isinstance(index, int) or not 0 <= index < model_classes:
            raise ConfigError(f"class map '{path}': model class {index!r} is outside 0..{model_classes - 1}")
        lookup[index] = taxonomy.id_of(str(name))
    return lookup


class Segmenter:
    """``segmenter(rgb (H, W, 3) uint8) -> (H, W, N) float32`` taxonomy probabilities."""

    def __init__(self, config: SegmenterStageConfig, taxonomy: ClassTaxonomy) -> None:
        self.config = config.validate()
        if config.type == "none":
            raise ConfigError("segmenter.type is 'none'; there is no model to run")
        from ssr_ros.devices import resolve_device

        self.device = resolve_device(config.device)
        self.taxonomy = taxonomy
        path = Path(config.model)
        if not path.is_file():
            raise MapFileError(f"segmenter model '{path}' does not exist")
        if config.type == "torchscript":
            extra = {METADATA_FILE: ""}
            try:
                self._module = torch.jit.load(str(path), map_location=self.device, _extra_files=extra)
            except RuntimeError as error:
                raise MapFileError(f"'{path}' is not a TorchScript model: {error}") from error
            self._module.eval()
            metadata = json.loads(extra[METADATA_FILE]) if extra[METADATA_FILE] else {}
            size = metadata.get("input_size")
            self.input_size = tuple(size) if size else None
            self._run = self._run_torchscript
        else:
            try:
                import onnxruntime
            except ImportError as error:
                raise ConfigError("segmenter.type 'onnx' needs onnxruntime (pip install onnxruntime, or "
                                  "onnxruntime-gpu for CUDA)") from error
            providers = ["CPUExecutionProvider"]
            if self.device.type == "cuda" and "CUDAExecutionProvider" in onnxruntime.get_available_providers():
                providers.insert(0, "CUDAExecutionProvider")
            self._session = onnxruntime.InferenceSession(str(path), providers=providers)
            shape = self._session.get_inputs()[0].shape
            fixed = all(isinstance(s, int) for s in shape[2:])
            self.input_size = (int(shape[2]), int(shape[3])) if fixed else None
            self._run = self._run_onnx
        self._class_map = None
        if config.class_map:
            self._class_map_path = config.class_map

    def _run_torchscript(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self._module(x.to(self.device)).float()

    def _run_onnx(self, x: torch.Tensor) -> torch.Tensor:
        name = self._session.get_inputs()[0].name
        return torch.from_numpy(self._session.run(None, {name: x.cpu().numpy()})[0]).float()

    def scores(self, rgb: np.ndarray) -> torch.Tensor:
        """(M, H, W) float32 class probabilities of the model's own classes."""
        rgb = np.asarray(rgb)
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise InvalidInput(f"segmenter input must be (H, W, 3) uint8 RGB, got {rgb.dtype} {rgb.shape}")
        height, width = rgb.shape[:2]
        x = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].float() / 255.0
        if self.input_size is not None and tuple(self.input_size) != (height, width):
            x = F.interpolate(x, size=tuple(self.input_size), mode="bilinear", align_corners=False)
        logits = self._run(x)
        if logits.ndim != 4 or logits.shape[0] != 1:
            raise InvalidInput(f"segmenter output must be (1, M, H, W) class scores, got {tuple(logits.shape)}")
        probs = torch.softmax(logits, dim=1)
        if tuple(probs.shape[-2:]) != (height, width):
            probs = F.interpolate(probs, size=(height, width), mode="bilinear", align_corners=False)
        return probs[0].cpu()

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        probs = self.scores(rgb)
        model_classes = probs.shape[0]
        if self._class_map is None and getattr(self, "_class_map_path", ""):
            self._class_map = torch.from_numpy(load_class_map(self._class_map_path, self.taxonomy, model_classes))
        if self._class_map is not None:
            if len(self._class_map) != model_classes:
                raise InvalidInput(f"the class map covers {len(self._class_map)} classes, the model gives {model_classes}")
            mapped = torch.zeros((self.taxonomy.num_classes,) + tuple(probs.shape[1:]))
            probs = mapped.index_add_(0, self._class_map, probs)
        elif model_classes != self.taxonomy.num_classes:
            raise InvalidInput(f"the model gives {model_classes} classes but the taxonomy has "
                               f"{self.taxonomy.num_classes}; set segmenter.class_map")
        return np.moveaxis(probs.numpy(), 0, -1)


def export_segmenter(model: torch.nn.Module, out_dir: str | Path, height: int, width: int,
                     formats: tuple[str, ...] = ("torchscript", "onnx")) -> dict[str, Path]:
    """Write ``model`` (RGB (1, 3, H, W) -> scores) as ``segmenter.ts.pt`` and ``segmenter.onnx``
    for a fixed (height, width) input; returns the written files by format."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model = model.eval().cpu()
    example = torch.rand(1, 3, height, width)
    written = {}
    if "torchscript" in formats:
        traced = torch.jit.trace(model, example)
        path = out_dir / "segmenter.ts.pt"
        metadata = json.dumps({"input_size": [height, width], "classes": int(model(example).shape[1])})
        torch.jit.save(traced, str(path), _extra_files={METADATA_FILE: metadata})
        written["torchscript"] = path
    if "onnx" in formats:
        path = out_dir / "segmenter.onnx"
        try:
            torch.onnx.export(model, (example,), str(path), dynamo=False, input_names=["rgb"], output_names=["scores"],
                              opset_version=17)
        except Exception as error:  # noqa: BLE001 - the exporter's missing-dependency errors vary
            raise ConfigError(f"ONNX export failed ({error}); it needs the 'onnx' package (pip install onnx)") from error
        written["onnx"] = path
    return written
