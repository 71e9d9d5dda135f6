"""Saving and loading network weights: a versioned dict read with ``torch.load(weights_only=True)``.

File layout (a plain dict of primitives and tensors, so no code is unpickled)::

    {"format": "ssr_ros.weights", "version": 2, "model_type": "ssr_unet" | "segmenter2d" | "mono_depth" (a class's MODEL_TYPE),
     "config": {field: value, ...}, "state_dict": {...}, "metadata": {str: str|int|float},
     "contract": {voxel_size, truncation, chunk_size, num_classes, class_names, geometry_input,
                  gravity, calibration: {...}}}      # completion models only

Version 1 files (no contract) still load; their contract is the one they were trained with
(:data:`~ssr_ros.completion.contract.LEGACY_CONTRACT`). A loaded completion model carries
its contract as ``model.contract``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch

from ssr_ros.completion.contract import LEGACY_CONTRACT, ModelContract
from ssr_ros.config import config_from_dict
from ssr_ros.errors import ConfigError, MapFileError
from ssr_ros.package_files import SOURCE_ROOT, find_package_file

FORMAT = "ssr_ros.weights"
VERSION = 2
READABLE_VERSIONS = (1, 2)
MODELS_DIR = SOURCE_ROOT / "models"
DEFAULT_WEIGHTS = "ssr_unet_small.pt"


def _completion_models() -> dict[str, type]:
    """The completion package's own networks by ``model_type``: the kinds :func:`load_model` knows
    without being handed a class. A network class of another package (the monocular network) is
    saved and loaded through its ``MODEL_TYPE`` and ``CONFIG_CLASS`` attributes."""
    from ssr_ros.completion.network import SSRUNet
    from ssr_ros.completion.segmenter import Segmenter2d

    return {cls.MODEL_TYPE: cls for cls in (SSRUNet, Segmenter2d)}


def _model_type(cls: type) -> str:
    """The ``model_type`` a network class is stored as; MapFileError for a class weights files do not hold."""
    if getattr(cls, "MODEL_TYPE", None) is None or getattr(cls, "CONFIG_CLASS", None) is None:
        raise MapFileError(f"{cls.__name__} is not a network class weights files hold (no MODEL_TYPE / CONFIG_CLASS)")
    return cls.MODEL_TYPE


def default_weights_path() -> Path:
    """The packaged default completion weights (source checkout, else ROS share directory)."""
    return find_package_file("models", DEFAULT_WEIGHTS) or MODELS_DIR / DEFAULT_WEIGHTS


def save_model(
    model: torch.nn.Module, path: str | Path, metadata: dict[str, Any] | None = None, contract: ModelContract | None = None
) -> Path:
    """Write ``model`` (config + float32 weights) to ``path``; returns the path.

    A completion model needs a contract: ``contract`` or the model's own ``model.contract``.
    """
    path = Path(path)
    model_type = _model_type(type(model))
    contract = contract or getattr(model, "contract", None)
    if model_type == "ssr_unet" and contract is None:
        raise MapFileError("a completion model is saved with its contract (voxel size, truncation, classes)")
    clean_metadata = {}
    for key, value in (metadata or {}).items():
        if not isinstance(value, (str, int, float, bool)):
            value = str(value)
        clean_metadata[str(key)] = value
    document = {
        "format": FORMAT,
        "version": VERSION,
        "model_type": model_type,
        "config": dataclasses.asdict(model.config),
        "state_dict": {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()},
        "metadata": clean_metadata,
    }
    if contract is not None:
        document["contract"] = contract.to_dict()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        torch.save(document, tmp)
        tmp.replace(path)
    except OSError as error:
        raise MapFileError(f"cannot write weights '{path}': {error.strerror or error}") from error
    return path


def read_weights(path: str | Path) -> dict[str, Any]:
    """Read and check a weights file's dict; raises MapFileError saying what is wrong."""
    path = Path(path)
    if not path.is_file():
        raise MapFileError(
            f"weights file '{path}' not found; train one with 'ssr train CONFIG' or set completion.weights"
        )
    try:
        document = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - torch.load fails in many ways on a damaged file
        raise MapFileError(f"weights file '{path}' is corrupt or not a PyTorch weights file: {error}") from error
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise MapFileError(f"weights file '{path}' is not an ssr_ros weights file (no format '{FORMAT}')")
    if document.get("version") not in READABLE_VERSIONS:
        raise MapFileError(
            f"weights file '{path}' has format version {document.get('version')!r}; this ssr_ros reads version {VERSION}"
        )
    for key in ("model_type", "config", "state_dict"):
        if key not in document:
            raise MapFileError(f"weights file '{path}' lacks '{key}'")
    return document


def read_component_weights(path: str | Path, file_format: str, version: int, model_type: str, what: str) -> dict[str, Any]:
    """The dict of a weights file of its own format family (the regulariser's, the shape prior's),
    read with ``weights_only`` and its format, version and model type checked; ``what`` names the
    weights in the MapFileError raised otherwise."""
    path = Path(path)
    try:
        document = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError as error:
        raise MapFileError(f"{what} weights '{path}' not found") from error
    except Exception as error:  # noqa: BLE001 - torch.load fails in many ways on a damaged file
        raise MapFileError(f"cannot read {what} weights '{path}': {error}") from error
    if not isinstance(document, dict) or document.get("format") != file_format:
        raise MapFileError(f"'{path}' is not a {what} weights file (format {file_format!r} expected)")
    if document.get("version") != version or document.get("model_type") != model_type:
        raise MapFileError(f"'{path}' holds {document.get('model_type')!r} version {document.get('version')}; "
                           f"expected {model_type!r} version {version}")
    return document


def load_model(
    path: str | Path, device: torch.device | str = "cpu", expected_type: str | type | None = None
) -> torch.nn.Module:
    """Rebuild the model stored in ``path`` on ``device`` in eval mode.

    ``expected_type`` refuses a file holding another kind: a network class (one with
    ``MODEL_TYPE`` and ``CONFIG_CLASS``, such as ``ssr_ros.mono.network.MonoDepthNet``) or the
    ``model_type`` of one of the completion package's own ('ssr_unet', 'segmenter2d'). Without
    it, the file may hold either of the completion package's networks.
    """
    document = read_weights(path)
    model_type = document["model_type"]
    classes = _completion_models()
    if isinstance(expected_type, type):
        model_cls = expected_type
        expected_type = _model_type(model_cls)
        classes = {expected_type: model_cls}
    if expected_type is not None and model_type != expected_type:
        raise MapFileError(f"weights file '{path}' holds a {model_type!r} model, expected {expected_type!r}")
    if model_type not in classes:
        raise MapFileError(f"weights file '{path}' holds model type {model_type!r}; expected one of {sorted(classes)} "
                           "(another package's network is loaded by handing load_model its class)")
    model_cls = classes[model_type]
    config_cls = model_cls.CONFIG_CLASS
    try:
        config = config_from_dict(config_cls, document["config"])
    except ConfigError as error:
        raise MapFileError(f"weights file '{path}' has an invalid config: {error}") from error
    model = model_cls(config)
    try:
        model.load_state_dict(document["state_dict"])
    except RuntimeError as error:
        raise MapFileError(f"weights file '{path}' does not match its config: {error}") from error
    if model_type == "ssr_unet":
        model.contract = read_contract(document, path)
    return model.to(device).eval()


def read_contract(document: dict[str, Any], path: str | Path = "") -> ModelContract:
    """The contract of a completion weights document (the legacy one for version 1 files)."""
    if "contract" not in document:
        return ModelContract(num_classes=int(document["config"].get("num_classes", 21)), **LEGACY_CONTRACT)
    try:
        return ModelContract.from_dict(document["contract"])
    except ConfigError as error:
        raise MapFileError(f"weights file '{path}': {error}") from error


def weights_metadata(path: str | Path) -> dict[str, Any]:
    """The metadata dict stored with the weights (training command, data, metrics...)."""
    return dict(read_weights(path).get("metadata", {}))
