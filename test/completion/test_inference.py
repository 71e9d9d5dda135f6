"""Chunked inference over a map region: tiling, blending, write-back through the map contract."""

import pytest
import torch

from ssr_ros.completion.contract import Calibration
from ssr_ros.completion.inference import (
    CompletionConfig,
    blend_weights,
    chunk_origins,
    complete_region,
    nearby_observed_classes,
    observed_classes_only,
    predict_chunks,
    predict_region,
)
from ssr_ros.completion.network import SSRUNet, SSRUNetConfig
from ssr_ros.errors import ConfigError
from ssr_ros.map.chunk import DenseChunk

NUM_CLASSES = 5


class FakeMap:
    """A dense voxel grid offering the map's chunk contract (extract_chunk / write_predictions)."""

    def __init__(self, shape=(40, 24, 20), voxel_size=0.05, truncation=0.15):
        self.shape = shape
        self.voxel_size = voxel_size
        self.truncation = truncation
        g = torch.Generator().manual_seed(0)
        k = torch.arange(shape[2], dtype=torch.float32)
        self.tsdf = ((k + 0.5 - 5) * voxel_size).clamp(-truncation, truncation).expand(*shape).clone()
        self.observed = torch.rand(shape, generator=g) > 0.5
        self.tsdf[~self.observed] = truncation
        self.color = torch.rand(*shape, 3, generator=g)
        self.semantics = torch.zeros(*shape, NUM_CLASSES)
        self.predicted = torch.zeros(shape, dtype=torch.bool)
        self.pred_tsdf = torch.full(shape, float("nan"))
        self.pred_confidence = torch.zeros(shape)
        self.writes = []

    def extract_chunk(self, origin_voxel, size):
        o = [int(v) for v in origin_voxel]
        def take(array, fill):
            out = torch.full(tuple(size) + array.shape[3:], fill, dtype=array.dtype)
            src = tuple(slice(max(o[a], 0), min(o[a] + size[a], self.shape[a])) for a in range(3))
            dst = tuple(slice(s.start - o[a], s.stop - o[a]) for a, s in enumerate(src))
            out[dst] = array[src]
            return out
        observed = take(self.observed, False)
        return DenseChunk(
            origin_voxel=torch.tensor(o), voxel_size=self.voxel_size, truncation=self.truncation,
            tsdf=take(self.tsdf, self.truncation), weight=observed.float(), observed=observed,
            color=take(self.color, 0.0), semantics=take(self.semantics, 0.0), predicted=take(self.predicted, False),
        )

    def write_predictions(self, origin_voxel, tsdf, color, semantics_probs, confidence=None):
        self.writes.append((origin_voxel.clone(), tuple(tsdf.shape)))
        o = [int(v) for v in origin_voxel]
        region = tuple(slice(o[a], o[a] + tsdf.shape[a]) for a in range(3))
        free = ~self.observed[region] & torch.isfinite(tsdf)  # NaN = no prediction
        self.pred_tsdf[region] = torch.where(free, tsdf, self.pred_tsdf[region])
        self.pred_confidence[region] = torch.where(free, confidence, self.pred_confidence[region])
        self.predicted[region] |= free


def _model():
    torch.manual_seed(0)
    return SSRUNet(SSRUNetConfig(num_classes=NUM_CLASSES, base_width=4, max_width=8, levels=3))


def test_chunk_origins_cover_the_region_with_the_requested_overlap():
    origins = chunk_origins((0, 0, 0), (40, 16, 10), chunk_size=16, overlap=4)
    xs = sorted({o[0] for o in origins})
    assert xs == [0, 12, 24] and sorted({o[1] for o in origins}) == [0] and sorted({o[2] for o in origins}) == [0]
    assert max(xs) + 16 >= 40


def test_blend_weights_ramp_from_faces_and_are_one_inside():
    w = blend_weights(16, 4)
    assert w.shape == (16, 16, 16)
    assert torch.isclose(w[0, 8, 8], torch.tensor(0.2)) and w[8, 8, 8] == 1
    assert (w > 0).all()


def test_blended_prediction_equals_a_single_chunk_where_the_network_is_translation_invariant():
    # With overlap 0 and chunk = region, the region prediction is exactly the network output.
    fake = FakeMap(shape=(16, 16, 16))
    model = _model().eval()
    prediction = predict_region(model, fake, (0, 0, 0), (16, 16, 16), chunk_size=16, overlap=0)
    direct = model.predict_chunks([fake.extract_chunk(torch.zeros(3), (16, 16, 16))])
    assert torch.allclose(prediction.tsdf, direct.tsdf[0], atol=1e-6)
    assert torch.allclose(prediction.semantics_probs.sum(-1), torch.ones(16, 16, 16), atol=1e-5)


def test_overlapping_chunks_blend_into_a_full_region_and_write_back_keeps_observed():
    fake = FakeMap()
    model = _model()
    config = CompletionConfig(chunk_size=16, overlap=4, batch_size=3)
    prediction = predict_region(model, fake, (2, 0, 0), (38, 24, 20), 16, 4, 3)
    assert prediction.tsdf.shape == (36, 24, 20)
    assert prediction.semantics_probs.shape == (36, 24, 20, NUM_CLASSES)
    assert prediction.color.shape == (36, 24, 20, 3)
    assert torch.isfinite(prediction.tsdf).all()
    assert prediction.tsdf.abs().max() <= fake.truncation
    assert ((prediction.confidence > 0) & (prediction.confidence <= 1)).all()
    assert torch.equal(prediction.observed, fake.observed[2:38])
    # Write-back with the gate open as far as it goes: every unobserved voxel the network
    # predicts on the surface (the map's rule: -1 voxel < tsdf <= half a voxel) is written,
    # nothing observed is touched.
    wide_open = CompletionConfig(chunk_size=16, overlap=4, batch_size=3, min_confidence=1e-6, max_distance=10.0,
                                 min_enclosure=0, min_support=0)
    gated = complete_region(model, fake, (2, 0, 0), (38, 24, 20), wide_open)
    assert len(fake.writes) == 1 and fake.writes[0][1] == (36, 24, 20)
    assert int(fake.writes[0][0][0]) == 2
    region = (slice(2, 38), slice(None), slice(None))
    assert not (fake.predicted[region] & fake.observed[region]).any()
    surface = ~fake.observed[region] & (prediction.tsdf <= 0.5 * fake.voxel_size) & (prediction.tsdf > -fake.voxel_size)
    assert surface.any() and fake.predicted[region][surface].all()
    assert torch.isfinite(gated.tsdf).sum() == fake.predicted[region].sum()


def test_none_model_writes_nothing_and_bad_config_is_refused():
    fake = FakeMap()
    assert complete_region(None, fake, (0, 0, 0), (8, 8, 8)) is None
    assert fake.writes == []
    with pytest.raises(ConfigError, match="overlap"):
        CompletionConfig(chunk_size=16, overlap=16).validate()


def test_scheduled_chunks_blend_where_they_overlap_and_leave_gaps_unpredicted():
    from ssr_ros.completion.inference import complete_chunks

    fake = FakeMap()
    model = _model()
    config = CompletionConfig(chunk_size=16, overlap=4)
    prediction = predict_chunks(model, fake, [(0, 0, 0), (12, 0, 0), (24, 8, 0)], 16, 4, 2)
    assert prediction.tsdf.shape == (40, 24, 16)
    covered = torch.isfinite(prediction.tsdf)
    assert covered[:28, :16].all() and not covered[:24, 16:].any()
    assert (prediction.confidence[covered] > 0).all()
    gated = complete_chunks(model, fake, [(0, 0, 0), (12, 0, 0), (24, 8, 0)], config)
    assert not torch.isfinite(gated.tsdf[~covered]).any()
    assert len(fake.writes) == 1  # one batched, blended write for all scheduled chunks


def test_predicted_classes_are_those_the_chunk_observed():
    fake = FakeMap(shape=(8, 8, 8))
    chunk = fake.extract_chunk(torch.zeros(3, dtype=torch.int64), (8, 8, 8))
    probs = torch.softmax(torch.randn(8, 8, 8, NUM_CLASSES, generator=torch.Generator().manual_seed(1)), -1)
    probs[..., 3] += 2.0  # the network favours a class nothing observed carries
    probs = probs / probs.sum(-1, keepdim=True)
    # no class evidence in the chunk: the network's classes as they are
    assert torch.equal(observed_classes_only(probs, chunk), probs)
    # observed voxels labelled 1 and 2, with a trace of evidence on every class (as fusion leaves)
    chunk.semantics[chunk.observed] = 0.01
    labels = torch.where(torch.arange(8)[:, None, None].expand(8, 8, 8) < 4, 1, 2)
    chunk.semantics[chunk.observed, labels[chunk.observed]] = 5.0
    restricted = observed_classes_only(probs, chunk)
    assert set(restricted.argmax(-1).unique().tolist()) <= {1, 2}
    assert torch.allclose(restricted.sum(-1), torch.ones(8, 8, 8))
    assert torch.all(restricted[..., [0, 3, 4]] == 0)
    # within the observed classes the network's ranking is kept
    assert torch.equal(restricted[..., 1] > restricted[..., 2], probs[..., 1] > probs[..., 2])


def test_predicted_classes_follow_the_observed_voxels_nearby():
    size = (24, 8, 8)
    chunk = FakeMap(shape=size).extract_chunk(torch.zeros(3, dtype=torch.int64), size)
    chunk.observed[:] = False
    chunk.semantics[:] = 0.0
    # two observed patches: class 1 at x = 0..2, class 4 at x = 21..23; the network says 3 everywhere
    chunk.observed[:3] = True
    chunk.observed[21:] = True
    chunk.semantics[:3, ..., 1] = 5.0
    chunk.semantics[21:, ..., 4] = 5.0
    probs = torch.full(size + (NUM_CLASSES,), 0.1)
    probs[..., 3] = 0.6
    voted = nearby_observed_classes(probs, chunk, sigma=1.5)
    assert torch.allclose(voted.sum(-1), torch.ones(size))
    labels = voted.argmax(-1)
    assert (labels[:8] == 1).all() and (labels[16:] == 4).all()  # each side takes its neighbours' class
    assert voted[4, 4, 4, 1] == 1.0  # all votes agree: certain
    # beyond 3 sigma (5 voxels) of every labelled voxel: the network's classes, restricted to the observed ones
    middle = voted[8:16]
    assert torch.equal(middle, observed_classes_only(probs, chunk)[8:16])
    assert set(middle.argmax(-1).unique().tolist()) <= {1, 4}
    # sigma 0 leaves the network's (restricted) classes everywhere
    assert torch.equal(nearby_observed_classes(probs, chunk, 0.0), observed_classes_only(probs, chunk))


def test_the_disagreement_of_the_symmetric_copies_reaches_the_gate_features():
    from ssr_ros.completion.gating import GateSettings, gate

    fake = FakeMap(shape=(16, 16, 16))
    model = _model().eval()
    alone = predict_region(model, fake, (0, 0, 0), (16, 16, 16), chunk_size=16, overlap=0)
    averaged = predict_region(model, fake, (2, 2, 0), (14, 14, 16), chunk_size=16, overlap=0, symmetries=8)
    assert torch.count_nonzero(alone.tsdf_spread) == 0
    assert averaged.tsdf_spread.shape == (12, 12, 16) and float(averaged.tsdf_spread.max()) > 1e-3  # an untrained net is not symmetric
    settings = GateSettings(min_confidence=0.0, max_distance=1.0, min_enclosure=0, enclosure_radius=0.2)
    result = gate(averaged.tsdf, averaged.observed, averaged.observed_tsdf, averaged.free, fake.voxel_size,
                  averaged.model_truncation, Calibration(), settings, with_features=True, tsdf_spread=averaged.tsdf_spread)
    assert torch.equal(result.features["tsdf_spread"], averaged.tsdf_spread)
