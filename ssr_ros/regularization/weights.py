"""Regulariser weights: a versioned dict read with ``torch.load(weights_only=True)``.

Layout::

    {"format": "ssr_ros.regularizer", "version": 1, "model_type": "learned_primal_dual",
     "network": {RegularizerNetworkConfig fields}, "data_cost": {DataCostConfig fields},
     "contract": {"voxel_size", "truncation", "num_labels", "class_names"},
     "state_dict": {...}, "metadata": {str: str | int | float}}

The contract is what the model was trained on; :func:`check_regularizer_contract` compares it
with a map before the model runs on it.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch

from ssr_ros.atomic_file import atomic_write
from ssr_ros.completion.weights import read_component_weights
from ssr_ros.config import config_from_dict
from ssr_ros.errors import ConfigError, MapFileError
from ssr_ros.package_files import SOURCE_ROOT, find_package_file
from ssr_ros.regularization.data_cost import DataCostConfig
from ssr_ros.regularization.network import LearnedRegularizer, RegularizerNetworkConfig

FORMAT = "ssr_ros.regularizer"
VERSION = 1
MODEL_TYPE = "learned_primal_dual"
DEFAULT_WEIGHTS = "regularizer_pd_t3_context.pt"


def default_regularizer_weights() -> Path:
    """The packaged default weights (source checkout, else the ROS share directory)."""
    return find_package_file("models", DEFAULT_WEIGHTS) or SOURCE_ROOT / "models" / DEFAULT_WEIGHTS


def save_regularizer(
    model: LearnedRegularizer, path: str | Path, data_cost: DataCostConfig, voxel_size: float, truncation: float,
    class_names: list[str], metadata: dict[str, Any] | None = None,
) -> Path:
    """Write ``model`` with what it expects of a map; atomic."""
    document = {
        "format": FORMAT, "version": VERSION, "model_type": MODEL_TYPE,
        "network": dataclasses.asdict(model.config), "data_cost": dataclasses.asdict(data_cost),
        "contract": {"voxel_size": float(voxel_size), "truncation": float(truncation),
                     "num_labels": int(model.num_labels), "class_names": list(class_names)},
        "state_dict": {k: v.detach().to("cpu", torch.float32) for k, v in model.state_dict().items()},
        "metadata": dict(metadata or {}),
    }
    with atomic_write(path, "regularizer weights") as handle:
        torch.save(document, handle)
    return Path(path)


def load_regularizer(path: str | Path, device: str | torch.device = "cpu") -> LearnedRegularizer:
    """The model stored at ``path`` (eval mode, on ``device``), with ``.contract`` (dict) and
    ``.data_cost`` (DataCostConfig) attached. MapFileError when the file is not such weights."""
    path = Path(path)
    document = read_component_weights(path, FORMAT, VERSION, MODEL_TYPE, "regularizer")
    try:
        network_fields = dict(document["network"])
        # files written before the data-cost skip existed have none
        network_fields.setdefault("data_skip", "data_gamma" in document["state_dict"])
        network = config_from_dict(RegularizerNetworkConfig, network_fields)
        data_cost = config_from_dict(DataCostConfig, document["data_cost"])
        contract = dict(document["contract"])
        model = LearnedRegularizer(int(contract["num_labels"]), network)
        state = dict(document["state_dict"])
        if network.context_levels:  # files written before the own-class weight had none (= 0)
            state.setdefault("context.own_weight", torch.tensor(0.0))
        model.load_state_dict(state)
    except (KeyError, RuntimeError, ConfigError) as error:
        raise MapFileError(f"regularizer weights '{path}' are inconsistent: {error}") from error
    model.contract = contract
    model.data_cost = data_cost
    model.metadata = dict(document.get("metadata", {}))
    return model.to(device).eval()


def check_regularizer_contract(contract: dict, voxel_size: float, truncation: float, class_names: list[str]) -> None:
    """ConfigError when the map differs from what the weights were trained on (voxel size or
    truncation off by more than 1%, or another class list)."""
    for name, have in (("voxel_size", voxel_size), ("truncation", truncation)):
        want = float(contract[name])
        if abs(have - want) > 0.01 * want:
            raise ConfigError(f"regularizer weights were trained at {name}={want} m; the map has {have} m")
    if list(contract["class_names"]) != list(class_names):
        raise ConfigError(
            f"regularizer weights were trained on {len(contract['class_names'])} classes "
            f"{contract['class_names'][:4]}...; the map's taxonomy has {len(class_names)} {list(class_names)[:4]}..."
        )
