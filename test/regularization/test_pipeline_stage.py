"""The regularisation stage in the mapping pipeline and ``ssr regularize`` on a real fused map:
labels come out beside the map, nothing measured changes."""

import sys
from pathlib import Path

import numpy as np
import torch
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "data"))
from synthetic_frames import small_frames  # noqa: E402

from ssr_ros.cli.main import main as ssr_main  # noqa: E402
from ssr_ros.map.semantic_tsdf import read_map  # noqa: E402
from ssr_ros.pipeline import MappingPipeline, PipelineConfig  # noqa: E402
from ssr_ros.regularization.config import RegularizationConfig  # noqa: E402
from ssr_ros.regularization.energy.tv_l1 import TVL1Config  # noqa: E402
from ssr_ros.regularization.labels import REGULARIZED_FILE, RegularizedLabels  # noqa: E402

STAGE = {"type": "tv_l1", "chunk_size": 32, "margin": 2, "tv_l1": {"iterations": 3, "tolerance": 0.0}}


def measured(tsdf_map):
    blocks = tsdf_map.allocated_block_coords()
    lo = (blocks.min(0).values * tsdf_map.block_size).tolist()
    size = ((blocks.max(0).values - blocks.min(0).values + 1) * tsdf_map.block_size).tolist()
    chunk = tsdf_map.extract_chunk(lo, size)
    return chunk.observed, chunk.tsdf[chunk.observed], chunk.weight[chunk.observed], chunk.semantics[chunk.observed]


def test_pipeline_regularizes_and_ssr_regularize_keeps_measurements(tmp_path):
    config = PipelineConfig(device="cpu")
    config.map.voxel_size = 0.2
    config.completion.type = "none"
    config.regularization = RegularizationConfig(**{**STAGE, "tv_l1": TVL1Config(**STAGE["tv_l1"])})
    pipeline = MappingPipeline(config)
    for frame in small_frames(3):
        pipeline.integrate(frame)
    before = measured(pipeline.map)
    report = pipeline.regularize()
    assert report.chunks > 0 and report.observed > 0 and report.iterations == 3
    assert len(pipeline.regularized) == report.observed + report.inferred
    after = measured(pipeline.map)
    for a, b in zip(before, after):
        assert torch.equal(a, b)
    files = pipeline.save(tmp_path / "run", ["map"])
    assert (tmp_path / "run" / REGULARIZED_FILE).resolve() in files
    assert pipeline.stats()["timings"]["regularize"]["count"] == 1

    config_file = tmp_path / "stage.yaml"
    config_file.write_text(yaml.safe_dump({"regularization": STAGE}))
    out = tmp_path / "regularized"
    assert ssr_main(["regularize", str(tmp_path / "run"), "--out", str(out), "--config", str(config_file)]) == 0
    store = RegularizedLabels.load(out / REGULARIZED_FILE)
    assert len(store) == len(pipeline.regularized)
    assert bool(store.observed.any())
    regularized_map = read_map(out)
    for a, b in zip(before, measured(regularized_map)):
        assert torch.equal(a, b)
    assert np.isin(store.label.numpy(), np.arange(1, 21)).all()
