"""Weights files: round trip, weights_only loading, clear errors."""

import pytest
import torch

from ssr_ros.completion.contract import INPUT_OBSERVED, Calibration, ModelContract, check_contract
from ssr_ros.completion.network import SSRUNet, SSRUNetConfig
from ssr_ros.completion.segmenter import Segmenter2d, SegmenterConfig
from ssr_ros.completion.weights import load_model, read_weights, save_model, weights_metadata
from ssr_ros.errors import ConfigError, MapFileError

TINY = SSRUNetConfig(num_classes=5, base_width=2, max_width=4, levels=2)
CONTRACT = ModelContract(voxel_size=0.05, truncation=0.2, chunk_size=32, num_classes=5,
                         class_names=("unknown", "wall", "floor", "chair", "table"))


def tiny():
    model = SSRUNet(TINY)
    model.contract = CONTRACT
    return model


def test_round_trip_restores_config_and_outputs(tmp_path):
    model = tiny().eval()
    path = save_model(model, tmp_path / "m.pt", metadata={"command": "ssr train x.yaml", "steps": 10})
    loaded = load_model(path)
    assert loaded.config == model.config
    x = torch.rand(1, 2, 4, 4, 4), torch.rand(1, 3, 4, 4, 4)
    assert torch.equal(loaded(*x, 0.1).tsdf, model(*x, 0.1).tsdf)
    assert weights_metadata(path) == {"command": "ssr train x.yaml", "steps": 10}
    # The file is loadable with weights_only=True (no pickled code).
    assert torch.load(path, weights_only=True)["model_type"] == "ssr_unet"


def test_a_model_run_channels_last_is_saved_in_plain_memory(tmp_path):
    model = tiny().eval().to(memory_format=torch.channels_last_3d)  # as the CPU forward pass leaves it
    saved = torch.load(save_model(model, tmp_path / "m.pt"), weights_only=True)["state_dict"]
    assert all(v.is_contiguous() for v in saved.values())
    assert all(torch.equal(saved[k], v) for k, v in model.state_dict().items())


def test_segmenter_round_trip_and_type_check(tmp_path):
    path = save_model(Segmenter2d(SegmenterConfig(num_classes=5, base_width=4, levels=2)), tmp_path / "s.pt")
    assert isinstance(load_model(path, expected_type="segmenter2d"), Segmenter2d)
    with pytest.raises(MapFileError, match="expected 'ssr_unet'"):
        load_model(path, expected_type="ssr_unet")


def test_missing_file_says_how_to_get_one(tmp_path):
    with pytest.raises(MapFileError, match="not found.*ssr train"):
        load_model(tmp_path / "nope.pt")


def test_corrupt_file_is_a_clear_error(tmp_path):
    path = tmp_path / "bad.pt"
    path.write_bytes(b"this is not a torch file")
    with pytest.raises(MapFileError, match="corrupt"):
        load_model(path)
    good = save_model(tiny(), tmp_path / "good.pt")
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[:200])
    with pytest.raises(MapFileError, match="corrupt"):
        load_model(truncated)


def test_foreign_and_mismatched_files_are_refused(tmp_path):
    torch.save({"weights": torch.zeros(3)}, tmp_path / "foreign.pt")
    with pytest.raises(MapFileError, match="not an ssr_ros weights file"):
        read_weights(tmp_path / "foreign.pt")
    document = read_weights(save_model(tiny(), tmp_path / "m.pt"))
    document["config"]["base_width"] = 3
    torch.save(document, tmp_path / "mismatch.pt")
    with pytest.raises(MapFileError, match="does not match its config"):
        load_model(tmp_path / "mismatch.pt")
    document["version"] = 99
    torch.save(document, tmp_path / "future.pt")
    with pytest.raises(MapFileError, match="version 99"):
        load_model(tmp_path / "future.pt")


def test_the_contract_travels_with_the_weights_and_a_model_without_one_is_not_saved(tmp_path):
    calibrated = CONTRACT.with_calibration(Calibration(scale=6.0, bias=-0.5, min_confidence=0.7, fitted_on="rooms 2000-2004"))
    model = tiny()
    path = save_model(model, tmp_path / "m.pt", contract=calibrated)
    loaded = load_model(path)
    assert loaded.contract == calibrated and loaded.contract.calibrated
    with pytest.raises(MapFileError, match="contract"):
        save_model(SSRUNet(TINY), tmp_path / "bare.pt")


def test_version_1_files_load_with_the_contract_they_were_trained_with(tmp_path):
    document = read_weights(save_model(tiny(), tmp_path / "m.pt"))
    del document["contract"]
    document["version"] = 1
    torch.save(document, tmp_path / "v1.pt")
    legacy = load_model(tmp_path / "v1.pt").contract
    assert (legacy.voxel_size, legacy.truncation, legacy.chunk_size) == (0.05, 0.15, 32)
    assert legacy.geometry_input == INPUT_OBSERVED and legacy.num_classes == 5 and not legacy.calibrated


def test_contract_check_adapts_truncation_and_refuses_what_cannot_work():
    names = list(CONTRACT.class_names)
    assert check_contract(CONTRACT, 0.05, 0.2, names, 32, 16) == []
    notes = check_contract(CONTRACT, 0.05, 0.15, names, 64, 16)
    assert any("truncation" in n for n in notes) and any("64^3" in n for n in notes)
    with pytest.raises(ConfigError, match="0.05 m voxels but the map has 0.1 m"):
        check_contract(CONTRACT, 0.1, 0.4, names, 32, 16)
    with pytest.raises(ConfigError, match="5 classes.*has 4"):
        check_contract(CONTRACT, 0.05, 0.2, names[:4], 32, 16)
    with pytest.raises(ConfigError, match="class names differ"):
        check_contract(CONTRACT, 0.05, 0.2, names[:3] + ["bed", "table"], 32, 16)
    with pytest.raises(ConfigError, match="multiple of 16"):
        check_contract(CONTRACT, 0.05, 0.2, names, 40, 16)
