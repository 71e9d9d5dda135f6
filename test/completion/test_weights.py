"""Weights files: round trip, weights_only loading, clear errors."""

import pytest
import torch

from ssr_ros.completion.network import SSRUNet, SSRUNetConfig
from ssr_ros.completion.segmenter import Segmenter2d, SegmenterConfig
from ssr_ros.completion.weights import load_model, read_weights, save_model, weights_metadata
from ssr_ros.errors import MapFileError

TINY = SSRUNetConfig(num_classes=5, base_width=2, max_width=4, levels=2)


def test_round_trip_restores_config_and_outputs(tmp_path):
    model = SSRUNet(TINY).eval()
    path = save_model(model, tmp_path / "m.pt", metadata={"command": "ssr train x.yaml", "steps": 10})
    loaded = load_model(path)
    assert loaded.config == model.config
    x = torch.rand(1, 2, 4, 4, 4), torch.rand(1, 3, 4, 4, 4)
    assert torch.equal(loaded(*x, 0.1).tsdf, model(*x, 0.1).tsdf)
    assert weights_metadata(path) == {"command": "ssr train x.yaml", "steps": 10}
    # The file is loadable with weights_only=True (no pickled code).
    assert torch.load(path, weights_only=True)["model_type"] == "ssr_unet"


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
    good = save_model(SSRUNet(TINY), tmp_path / "good.pt")
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[:200])
    with pytest.raises(MapFileError, match="corrupt"):
        load_model(truncated)


def test_foreign_and_mismatched_files_are_refused(tmp_path):
    torch.save({"weights": torch.zeros(3)}, tmp_path / "foreign.pt")
    with pytest.raises(MapFileError, match="not an ssr_ros weights file"):
        read_weights(tmp_path / "foreign.pt")
    document = read_weights(save_model(SSRUNet(TINY), tmp_path / "m.pt"))
    document["config"]["base_width"] = 3
    torch.save(document, tmp_path / "mismatch.pt")
    with pytest.raises(MapFileError, match="does not match its config"):
        load_model(tmp_path / "mismatch.pt")
    document["version"] = 99
    torch.save(document, tmp_path / "future.pt")
    with pytest.raises(MapFileError, match="version 99"):
        load_model(tmp_path / "future.pt")
