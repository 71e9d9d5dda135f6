"""The regularisation stage on hand-made chunks: what is written where, and what never is."""

import numpy as np
import pytest
import torch

from ssr_ros.errors import ConfigError, MapFileError
from ssr_ros.map.chunk import DenseChunk
from ssr_ros.regularization.config import RegularizationConfig
from ssr_ros.regularization.data_cost import DataCostConfig, data_cost, raw_labels
from ssr_ros.regularization.energy.tv_l1 import TVL1Config
from ssr_ros.regularization.labels import RegularizedLabels
from ssr_ros.regularization.stage import build_regularizer, chunk_origins, regularize_map

VS, TRUNC, L = 0.05, 0.2, 5
FLOOR, WALL = 2, 1


def floor_scene(size=16, seed=0):
    """A floor (class 2) filling z < 6 voxels, observed everywhere except a hole x, y in [6, 11);
    15% of the observed voxels carry a wrong class (4); the hole's floor is 'predicted'."""
    g = torch.Generator().manual_seed(seed)
    z = (torch.arange(size, dtype=torch.float32) + 0.5) * VS
    tsdf = (z - 6 * VS).clamp(-TRUNC, TRUNC).expand(size, size, size).clone()
    observed = torch.ones(size, size, size, dtype=torch.bool)
    observed[6:11, 6:11] = False
    tsdf[~observed] = TRUNC
    semantics = torch.zeros(size, size, size, L)
    wrong = torch.rand(size, size, size, generator=g) < 0.15
    semantics[..., FLOOR] = (observed & ~wrong).float()
    semantics[..., 4] = (observed & wrong).float()
    band = tsdf.abs() < TRUNC
    semantics *= (band & observed)[..., None]
    predicted = ~observed & (torch.arange(size) < 6).expand(size, size, size)
    predicted_tsdf = torch.where(predicted, torch.full_like(tsdf, -VS), torch.full_like(tsdf, float("nan")))
    return DenseChunk(
        origin_voxel=torch.zeros(3, dtype=torch.int64), voxel_size=VS, truncation=TRUNC, tsdf=tsdf,
        weight=observed.float() * 10, observed=observed, color=torch.zeros(size, size, size, 3),
        semantics=semantics, predicted=predicted, predicted_tsdf=predicted_tsdf,
        predicted_label=torch.where(predicted, 3, 0), predicted_confidence=predicted.float() * 0.5,
    )


class FakeMap:
    """extract_chunk / write_predictions over one DenseChunk at the origin, recording the writes."""

    def __init__(self, chunk):
        self.chunk = chunk
        self.writes = []

    def extract_chunk(self, origin, size):
        o = [int(v) for v in origin]
        n = self.chunk.size
        out = {}
        pad = lambda t, fill: torch.full(tuple(size) + tuple(t.shape[3:]), fill, dtype=t.dtype)  # noqa: E731
        for name, fill in (("tsdf", TRUNC), ("weight", 0.0), ("observed", False), ("color", 0.0),
                           ("semantics", 0.0), ("predicted", False), ("predicted_tsdf", float("nan")),
                           ("predicted_label", 0), ("predicted_confidence", 0.0)):
            src = getattr(self.chunk, name)
            dst = pad(src, fill)
            src_sl, dst_sl = [], []
            for a in range(3):
                lo, hi = max(o[a], 0), min(o[a] + size[a], n[a])
                src_sl.append(slice(lo, max(hi, lo)))
                dst_sl.append(slice(lo - o[a], max(hi, lo) - o[a]))
            dst[tuple(dst_sl)] = src[tuple(src_sl)]
            out[name] = dst
        return DenseChunk(origin_voxel=torch.tensor(o), voxel_size=VS, truncation=TRUNC, **out)

    def write_predictions(self, origin, tsdf, semantics_probs=None, confidence=None):
        self.writes.append((torch.as_tensor(origin).clone(), tsdf.clone(), semantics_probs.clone(), confidence.clone()))
        return int(torch.isfinite(tsdf).sum())


def run_stage(config):
    chunk = floor_scene()
    fake = FakeMap(chunk)
    store = RegularizedLabels()
    blocks = torch.stack(torch.meshgrid(*[torch.arange(2)] * 3, indexing="ij"), -1).reshape(-1, 3)
    report = regularize_map(build_regularizer(config), fake, blocks, 8, config, store, L)
    return chunk, fake, store, report


def test_tv_l1_stage_cleans_observed_labels_and_keeps_them_apart_from_inferred_ones():
    config = RegularizationConfig(type="tv_l1", chunk_size=24, margin=4, relabel_predicted=True,
                                  tv_l1=TVL1Config(smoothness=1.0, iterations=150, tolerance=1e-4))
    chunk, fake, store, report = run_stage(config)
    assert report.chunks == 1 and report.observed > 0
    axes = [torch.arange(n) for n in chunk.size]
    grid = torch.stack(torch.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
    found = store.lookup(grid)
    has_evidence = (chunk.semantics.sum(-1) > 0).reshape(-1)
    # every observed voxel with evidence has a regularised label, flagged observed
    assert bool(found["found"][has_evidence].all()) and bool(found["observed"][has_evidence].all())
    # inside the floor the wrong votes are overruled (in free space a class has no say)
    solid = has_evidence & (chunk.tsdf < 0).reshape(-1)
    raw = raw_labels(chunk).reshape(-1)
    assert float((raw[solid] != FLOOR).float().mean()) > 0.1
    assert float((found["label"][solid] != FLOOR).float().mean()) < 0.01
    # nothing observed is ever sent to the map's predicted layer
    for origin, tsdf, probs, conf in fake.writes:
        finite = torch.isfinite(tsdf)
        sl = tuple(slice(int(o), int(o) + n) for o, n in zip(origin, tsdf.shape))
        assert not bool(chunk.observed[sl][finite].any())
        assert bool(chunk.predicted[sl][finite].all())
        # the predicted floor of the hole is relabelled as floor, its geometry unchanged
        assert bool((probs.argmax(-1)[finite] == FLOOR).all())
        assert torch.allclose(tsdf[finite], chunk.predicted_tsdf[sl][finite])
    assert report.predicted_relabelled == int(chunk.predicted.sum())
    # inferred entries are unobserved and not predicted
    inferred = found["found"] & ~found["observed"]
    assert not bool(chunk.observed.reshape(-1)[inferred].any())
    assert not bool(chunk.predicted.reshape(-1)[inferred].any())


def test_type_none_does_nothing_and_learned_needs_weights(tmp_path):
    config = RegularizationConfig(type="none")
    assert build_regularizer(config) is None
    with pytest.raises(MapFileError, match="not found"):
        build_regularizer(RegularizationConfig(type="learned", weights=str(tmp_path / "missing.pt")))
    with pytest.raises(ConfigError, match="margin"):
        RegularizationConfig(chunk_size=16, margin=8).validate()


def test_chunk_origins_cover_every_allocated_block_once():
    blocks = torch.tensor([[0, 0, 0], [1, 0, 0], [-1, 2, 0], [7, 7, 7]])
    origins = chunk_origins(blocks, 8, 12)
    assert len(torch.unique(origins, dim=0)) == len(origins)
    for b in blocks:
        lo = b * 8
        for corner in [lo, lo + 7]:
            inside = ((corner >= origins) & (corner < origins + 12)).all(1)
            assert int(inside.sum()) == 1


def test_regularized_labels_round_trip(tmp_path):
    store = RegularizedLabels()
    v = torch.tensor([[0, 0, 0], [5, -3, 2], [-100, 4, 9]])
    store.replace_box([-200] * 3, [200] * 3, v, torch.tensor([1, 2, 3]), torch.tensor([0.9, 0.5, 0.25]),
                      torch.tensor([True, False, True]))
    store.replace_box([0, -5, 0], [10, 0, 5], v[1:2], torch.tensor([7]), torch.tensor([1.0]), torch.tensor([True]))
    loaded = RegularizedLabels.load(store.save(tmp_path / "labels.npz"))
    got = loaded.lookup(torch.tensor([[5, -3, 2], [-100, 4, 9], [1, 1, 1]]))
    assert got["found"].tolist() == [True, True, False]
    assert got["label"].tolist() == [7, 3, 0]
    assert got["observed"].tolist() == [True, True, False]
    assert np.allclose(got["confidence"].numpy(), [1.0, 0.25, 0.0], atol=1e-3)
    assert len(loaded) == 3


def test_data_cost_prefers_free_in_front_and_the_fused_class_behind():
    chunk = floor_scene()
    f, strength = data_cost(chunk, DataCostConfig())
    assert f.shape == (L,) + chunk.size
    above, below = (0, 0, 10), (0, 0, 4)
    assert int(f[(slice(None),) + above].argmin()) == 0
    if chunk.semantics[below][FLOOR] > 0:
        assert int(f[(slice(None),) + below].argmin()) == FLOOR
    hole = (8, 8, 3)
    assert float(strength[hole]) == 0.0 and float(f[(slice(None),) + hole].abs().max()) == 0.0


def test_completion_keeps_its_labels_unless_relabelling_is_asked_for():
    """By default the stage writes nothing into the predicted layer: the layout's and the objects'
    labels stay (relabelling is an option)."""
    config = RegularizationConfig(type="tv_l1", chunk_size=24, margin=4,
                                  tv_l1=TVL1Config(smoothness=1.0, iterations=20, tolerance=1e-4))
    chunk, fake, store, report = run_stage(config)
    assert bool(chunk.predicted.any()) and report.observed > 0
    assert fake.writes == [] and report.predicted_relabelled == 0
