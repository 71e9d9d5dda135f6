"""`ssr train config/training/smoke.yaml` on generated rooms fused by the map: the loss falls on CPU.
The shipped default weights load and complete a chunk."""

import json
from pathlib import Path

import pytest
import torch

from ssr_ros.cli.main import main
from ssr_ros.completion.weights import default_weights_path, load_model, weights_metadata

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_ssr_train_smoke_config_lowers_its_loss(tmp_path, capsys):
    out = tmp_path / "smoke"
    assert main(["train", str(ROOT / "config/training/smoke.yaml"), "--out", str(out), "--no-progress"]) == 0
    records = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in records if "loss" in r]
    assert len(losses) >= 4
    assert sum(losses[-2:]) / 2 < sum(losses[:2]) / 2, losses
    assert "weights:" in capsys.readouterr().out
    assert load_model(out / "model.pt").config.levels == 3


def test_shipped_weights_load_and_complete_a_chunk():
    path = default_weights_path()
    assert path.stat().st_size < 20e6
    model = load_model(path)
    metadata = weights_metadata(path)
    assert "ssr train" in metadata["command"]
    from chunk_fixtures import make_chunk

    chunk = make_chunk(size=(32, 32, 32))
    with torch.no_grad():
        out = model.predict_chunks([chunk])
    assert out.tsdf.shape == (1, 32, 32, 32) and torch.isfinite(out.tsdf).all()
    # The shipped file says what map it expects and how far its predictions can be trusted.
    contract = model.contract
    assert (contract.voxel_size, contract.num_classes) == (0.05, 21) and contract.calibrated
    assert 0.5 <= contract.calibration.min_confidence <= 1.0
