"""Object refinement on a fused map: what it may and may not write, the CLI and the object list."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from ssr_ros.completion.renderer import look_at
from ssr_ros.data.synthetic import simple_scene
from ssr_ros.geometry.camera import CameraIntrinsics
from ssr_ros.geometry.frame import Frame
from ssr_ros.map.config import TSDFConfig
from ssr_ros.map.semantic_tsdf import SemanticTSDF
from ssr_ros.objects.network import ShapePriorNet, ShapePriorNetworkConfig
from ssr_ros.objects.object_list import load_object_list
from ssr_ros.objects.refinement import ObjectRefinementConfig, inside_only, refine_objects
from ssr_ros.objects.weights import ShapePrior, save_shape_prior
from ssr_ros.taxonomy import ClassTaxonomy

NAMES = ClassTaxonomy.load().names


@pytest.fixture(scope="module")
def fused_room():
    """A 3 x 3 m room with a chair-sized box 20 cm in front of the y = 0 wall, seen from the front only."""
    return _fused(simple_scene((3.0, 3.0, 2.4), [("chair", (1.5, 0.45, 0.4), (0.25, 0.25, 0.4), 0.0)]))


def _fused(scene) -> SemanticTSDF:
    """``scene`` fused at 5 cm from three views from the front (y = 2.5 m) looking at (1.5, 0.5, 0.4)."""
    K = CameraIntrinsics(60.0, 60.0, 39.5, 29.5, 80, 60)
    tsdf_map = SemanticTSDF(TSDFConfig(voxel_size=0.05, backend="torch"), num_classes=len(NAMES))
    for eye in ([1.5, 2.6, 1.3], [1.1, 2.5, 1.1], [1.9, 2.5, 1.2]):
        T = look_at(torch.tensor(eye), torch.tensor([1.5, 0.5, 0.4])).numpy()
        view = scene.render(T, K)
        tsdf_map.integrate(Frame(depth=view.depth, rgb=view.rgb, labels=view.class_ids.astype(np.int64), intrinsics=K,
                                 T_world_cam=T, stamp_ns=0, frame_id="cam"))
    return tsdf_map


def _solid_prior(grid_size: int = 16) -> ShapePrior:
    """A prior that fills its whole grid (the worst case for the write-back rules)."""
    net = ShapePriorNet(1, ShapePriorNetworkConfig(grid_size=grid_size, base_width=2, class_embedding=2, yaw_bins=8))
    with torch.no_grad():
        net.out.weight.zero_()
        net.out.bias.fill_(-5.0)  # tanh -> -1: inside everywhere
    return ShapePrior(net.eval(), ["chair"], {"chair": 1.0})


class _SphereNet(ShapePriorNet):
    """The prior's network with a fixed answer: a ball (negative inside, positive outside) of
    ``radius`` centred ``centre_z`` above the grid's middle (grid units, the grid spans -1..1)."""

    centre_z, radius = 0.0, 0.6

    def forward(self, inputs: torch.Tensor, class_index: torch.Tensor) -> dict[str, torch.Tensor]:
        out = super().forward(inputs, class_index)
        g = inputs.shape[-1]
        axis = (torch.arange(g, dtype=torch.float32) + 0.5) / g * 2 - 1
        x, y, z = torch.meshgrid(axis, axis, axis, indexing="ij")
        ball = (torch.sqrt(x**2 + y**2 + (z - self.centre_z) ** 2) - self.radius) * 0.5
        return {"sdf": ball.expand(inputs.shape[0], g, g, g), "yaw_logits": out["yaw_logits"]}


def _sphere_prior(grid_size: int = 16) -> ShapePrior:
    """A prior whose shape has an inside and an outside (a surface crossing its grid)."""
    net = _SphereNet(1, ShapePriorNetworkConfig(grid_size=grid_size, base_width=2, class_embedding=2, yaw_bins=8))
    return ShapePrior(net.eval(), ["chair"], {"chair": 1.0})


def _empty_prior() -> ShapePrior:
    """A prior that answers "outside" everywhere (a shape with nothing inside)."""
    net = ShapePriorNet(1, ShapePriorNetworkConfig(grid_size=16, base_width=2, class_embedding=2, yaw_bins=8))
    with torch.no_grad():
        net.out.weight.zero_()
        net.out.bias.fill_(5.0)
    return ShapePrior(net.eval(), ["chair"], {"chair": 1.0})


class _HighBallNet(_SphereNet):
    """A fixed answer that floats: a small ball near the top of the grid, nothing below it."""

    centre_z, radius = 0.6, 0.3


def _snapshot(tsdf_map, lo, size):
    chunk = tsdf_map.extract_chunk(torch.tensor(lo), size)
    return {k: getattr(chunk, k).clone() for k in ("tsdf", "weight", "observed", "predicted", "free")}, chunk


def test_refined_object_stays_out_of_seen_free_space_walls_and_floor(fused_room):
    import copy

    tsdf_map = copy.deepcopy(fused_room)
    lo, size = (-4, -4, -4), (70, 70, 56)
    before, _ = _snapshot(tsdf_map, lo, size)
    config = ObjectRefinementConfig(min_fit=0.0, min_confidence=0.0, min_observed_voxels=3)
    result = refine_objects(tsdf_map, NAMES, _solid_prior(), config)
    chairs = [o for o in result.objects if o.class_name == "chair"]
    assert len(chairs) == 1 and chairs[0].refined and result.written_voxels > 0
    after, chunk = _snapshot(tsdf_map, lo, size)
    # observed voxels are untouched
    obs = before["observed"]
    assert torch.equal(after["tsdf"][obs], before["tsdf"][obs]) and torch.equal(after["weight"][obs], before["weight"][obs])
    written = after["predicted"] & ~before["predicted"]
    assert int(written.sum()) > 0
    solid = written & (chunk.predicted_tsdf < tsdf_map.truncation)
    # never into space seen free, never below the floor, never behind the wall the chair stands at
    assert not bool((solid & before["free"]).any())
    centres = chunk.voxel_centers()
    assert float(centres[solid][:, 2].min()) > 0.0
    assert float(centres[solid][:, 1].min()) > 0.0
    assert float(centres[solid][:, 1].max()) < 3.0 and float(centres[solid][:, 0].min()) > 0.0


def test_list_only_finds_the_chair_and_changes_nothing(fused_room):
    import copy

    tsdf_map = copy.deepcopy(fused_room)
    result = refine_objects(tsdf_map, NAMES, None, ObjectRefinementConfig(type="none"))
    chair = [o for o in result.objects if o.class_name == "chair"]
    assert len(chair) == 1 and not chair[0].refined and result.written_voxels == 0
    # its box is the chair's seen part: in front of the wall, over the floor, around x = 1.5
    c, e = np.asarray(chair[0].center), np.asarray(chair[0].extents)
    assert abs(c[0] - 1.5) < 0.1 and 0.15 < c[1] < 0.8 and 0.4 < e[0] < 0.7


def test_refine_objects_command_writes_map_and_object_list(fused_room, tmp_path):
    from ssr_ros.cli.main import main
    from ssr_ros.map.semantic_tsdf import read_map

    fused_room.save(tmp_path / "in.ssrmap")
    prior = _solid_prior()
    save_shape_prior(prior.model, tmp_path / "prior.pt", prior.class_names, prior.extents)
    code = main(["refine-objects", str(tmp_path / "in.ssrmap"), "--out", str(tmp_path / "out" / "refined.ssrmap"),
                 "--weights", str(tmp_path / "prior.pt")])
    assert code == 0
    objects = load_object_list(tmp_path / "out" / "objects.json")
    assert any(o.class_name == "chair" for o in objects)
    document = json.loads((tmp_path / "out" / "objects.json").read_text())
    assert document["frame_id"] == "map" and document["format"] == "ssr_ros.objects"
    read_map(tmp_path / "out" / "refined.ssrmap")
    assert main(["refine-objects", str(tmp_path / "in.ssrmap"), "--out", str(tmp_path / "x.ssrmap"),
                 "--weights", str(tmp_path / "missing.pt")]) == 2


def test_inside_only_keeps_the_solid_and_the_clears_and_drops_the_band_outside():
    voxel, trunc = 0.05, 0.2
    tsdf = np.array([np.nan, -0.15, -0.001, 0.0, 0.02, 0.03, 0.1, 0.19, trunc], dtype=np.float32)
    out = inside_only(tsdf, voxel, trunc)
    assert np.isnan(out[0])  # left alone stays left alone
    assert out[1] == np.float32(-0.15)  # deep inside: its distance
    # on the surface or within half a voxel outside it (occupied): inside, negative
    assert np.all(out[2:5] <= -0.01 * voxel + 1e-9) and np.all(out[2:5] < 0)
    assert np.all(np.isnan(out[5:8]))  # the band farther outside is not written
    assert out[8] == np.float32(trunc)  # a clear (the network's blob where the shape says empty) stays
    assert tsdf[5] == np.float32(0.03)  # the input is not changed


def test_objects_write_their_surface_only_when_asked(fused_room):
    import copy

    lo, size = (-4, -4, -4), (70, 70, 56)
    counts = {}
    for surface in (False, True):
        tsdf_map = copy.deepcopy(fused_room)
        before, _ = _snapshot(tsdf_map, lo, size)
        config = ObjectRefinementConfig(min_fit=0.0, min_confidence=0.0, min_observed_voxels=3, surface=surface)
        refine_objects(tsdf_map, NAMES, _sphere_prior(), config)
        after, chunk = _snapshot(tsdf_map, lo, size)
        written = after["predicted"] & ~before["predicted"]
        values = chunk.predicted_tsdf[written]
        outside_band = (values > 0.5 * tsdf_map.voxel_size) & (values < tsdf_map.truncation)
        counts[surface] = (int((values < 0).sum()), int(outside_band.sum()))
    assert counts[False][0] > 0 and counts[False][1] == 0  # inside only: solid, no band outside
    assert counts[True][1] > 0  # with its surface: the band outside is written too


def test_list_only_classes_are_listed_and_never_written(fused_room):
    import copy

    tsdf_map = copy.deepcopy(fused_room)
    config = ObjectRefinementConfig(min_fit=0.0, min_confidence=0.0, min_observed_voxels=3)
    result = refine_objects(tsdf_map, NAMES, _solid_prior(), config, list_only_classes=("chair",))
    chairs = [o for o in result.objects if o.class_name == "chair"]
    assert len(chairs) == 1 and not chairs[0].refined and result.written_voxels == 0


def test_a_shape_grown_far_beyond_what_was_seen_is_written_only_near_it(fused_room):
    import copy

    from ssr_ros.objects.instances import map_region
    from ssr_ros.objects.refinement import object_instances, within_fill

    # the chair seen from the front completed by a prior that fills its whole grid: with a tight
    # limit only the solid voxels nearest the seen surface are written, within the budget
    lo, size = (-4, -4, -4), (70, 70, 56)
    solid, budget = {}, {}
    for max_fill in (0.0, 0.03):
        tsdf_map = copy.deepcopy(fused_room)
        before, _ = _snapshot(tsdf_map, lo, size)
        config = ObjectRefinementConfig(min_fit=0.0, min_confidence=0.0, min_observed_voxels=3, max_fill=max_fill)
        result = refine_objects(tsdf_map, NAMES, _solid_prior(), config)
        chair = [o for o in result.objects if o.class_name == "chair"][0]
        assert chair.refined and chair.written_voxels > 0
        after, chunk = _snapshot(tsdf_map, lo, size)
        written = after["predicted"] & ~before["predicted"] & (chunk.predicted_tsdf <= tsdf_map.voxel_size / 2)
        solid[max_fill] = chunk.voxel_centers()[written].numpy()
        inst = [i for i in result.instances if i.class_name == "chair"][0]
        seen = result.region.centers(inst.voxels[inst.observed])
        _, extents, _ = result.shapes[inst.instance_id].box()
        budget[max_fill] = 0.05 * len(seen) * float(np.max(extents)) / tsdf_map.voxel_size
    assert 0 < len(solid[0.03]) <= budget[0.03] < len(solid[0.0])

    def farthest(points):
        return float(np.max(np.min(np.linalg.norm(points[:, None] - seen[None], axis=-1), axis=1)))

    assert farthest(solid[0.03]) < farthest(solid[0.0]) - 0.1

    # the budget itself: n seen voxels of an object 2000 / n voxels across hold at most 2,000 behind them
    region = map_region(fused_room, ObjectRefinementConfig().instances)
    inst = [i for i in object_instances(region, NAMES, ObjectRefinementConfig().instances, 0.0) if i.class_name == "chair"][0]
    n = int(inst.observed.sum())
    tsdf = np.full((20, 20, 20), np.nan, np.float32)
    tsdf[:10, :10, :20] = -0.01  # 2,000 solid voxels
    origin = region.origin_voxel + np.array([10, 10, 10])
    extent = 2000 * region.voxel_size / n
    assert within_fill(region, inst, origin, tsdf, extent, 1.0) is tsdf
    assert within_fill(region, inst, origin, tsdf, extent, 0.0) is tsdf  # 0: no limit
    tsdf[10:11, :10, :10] = -0.01  # one more row: 2,100, trimmed back to at most 2,000
    trimmed = within_fill(region, inst, origin, tsdf, extent, 1.0)
    assert np.count_nonzero(np.isfinite(trimmed) & (trimmed <= 0.025)) <= 2000
    assert np.count_nonzero(np.isfinite(trimmed)) > 1500
    tsdf[10:, :, :] = 0.2  # voxels in front of the surface are cleared, not filled: they do not count
    assert within_fill(region, inst, origin, tsdf, extent, 1.0) is tsdf


def test_a_shape_that_would_float_is_not_written(fused_room):
    import copy

    from ssr_ros.objects.refinement import supported

    net = _HighBallNet(1, ShapePriorNetworkConfig(grid_size=16, base_width=2, class_embedding=2, yaw_bins=8))
    floating = ShapePrior(net.eval(), ["chair"], {"chair": 1.0})
    counts, bottoms = {}, {}
    for gap in (0.0, 0.3):
        tsdf_map = copy.deepcopy(fused_room)
        config = ObjectRefinementConfig(min_fit=0.0, min_confidence=0.0, min_observed_voxels=3, max_fill=0.0,
                                        max_support_gap=gap, max_distance=0.0)
        result = refine_objects(tsdf_map, NAMES, floating, config)
        chair = [o for o in result.objects if o.class_name == "chair"][0]
        assert chair.refined
        shape = result.shapes[chair.instance_id]
        centre, extents, _ = shape.box()
        bottoms[gap] = centre[2] - extents[2] / 2
        counts[gap] = result.written_voxels
    assert bottoms[0.3] > 0.5, "the prior's ball floats half a metre over the floor"
    assert counts[0.0] > 0, "without the check the floating ball is written"
    assert counts[0.3] == 0, "with it, nothing under the ball holds it up: not written"
    # the sphere prior's ball reaches down near the floor: still written with the check on
    tsdf_map = copy.deepcopy(fused_room)
    config = ObjectRefinementConfig(min_fit=0.0, min_confidence=0.0, min_observed_voxels=3)
    assert refine_objects(tsdf_map, NAMES, _sphere_prior(), config).written_voxels > 0

    # supported(): a desk top under the footprint holds an object up; a table edge beside and above its bottom does not
    from ssr_ros.objects.instances import MapRegion

    shape3 = (10, 10, 30)
    region = MapRegion.__new__(MapRegion)
    region.origin_voxel, region.voxel_size, region.truncation = np.zeros(3, np.int64), 0.05, 0.15
    region.tsdf = np.full(shape3, 0.15, np.float32)
    write = np.full((4, 4, 4), np.nan, np.float32)
    write[1:3, 1:3, :] = -0.01  # solid columns x, y in 3..4 of the region (origin 2, 2, 16)
    origin, bottom = np.array([2, 2, 16]), 0.8
    support = np.zeros(shape3, bool)
    assert supported(region, support, origin, write, 0.2, 0.0, 0.3), "on the floor"
    assert not supported(region, support, origin, write, bottom, 0.0, 0.3)
    support[3, 3, 14] = True  # one stray voxel under the object holds nothing up
    assert not supported(region, support, origin, write, bottom, 0.0, 0.3)
    support[3:5, 3:5, 14] = True  # a desk top at 0.725 m under the object
    assert supported(region, support, origin, write, bottom, 0.0, 0.3)
    support[:] = False
    support[3, 3, 20] = True  # a surface at 1.025 m, above the object's bottom, in its footprint
    support[6, 6, 14] = True  # a desk top beside the footprint
    assert not supported(region, support, origin, write, bottom, 0.0, 0.3)


def _two_pieces_map(second_x: float):
    """Two chair-labelled slabs 0.12 x 0.25 x 0.8 m, one at x = 1.3 m, one at ``second_x``, seen from the front."""
    return _fused(simple_scene((3.0, 3.0, 2.4), [("chair", (1.3, 0.45, 0.4), (0.12, 0.25, 0.4), 0.0),
                                                 ("chair", (second_x, 0.45, 0.4), (0.12, 0.25, 0.4), 0.0)]))


def test_an_object_found_in_pieces_is_completed_once():
    """Two pieces of one class 24 cm apart whose union is chair-sized are one chair, completed
    once; two pieces 0.8 m apart (two chairs side by side) stay two."""
    from ssr_ros.objects.instances import InstanceConfig
    from ssr_ros.objects.refinement import fits_within

    chairs = {}
    for second_x, gap in ((1.66, 0.0), (1.66, 0.3), (2.1, 0.3), (2.1, 1.0)):
        config = ObjectRefinementConfig(min_fit=0.0, min_confidence=0.0, min_observed_voxels=3, join_gap=gap,
                                        instances=InstanceConfig(closing=0))
        result = refine_objects(_two_pieces_map(second_x), NAMES, _solid_prior(), config)
        chairs[second_x, gap] = [o for o in result.objects if o.class_name == "chair"]
        assert [i.instance_id for i in result.instances] == list(range(1, len(result.instances) + 1))
        assert [o.instance_id for o in result.objects] == [i.instance_id for i in result.instances]
    assert len(chairs[1.66, 0.0]) == 2, "without joining, each piece is its own instance"
    joined = chairs[1.66, 0.3]
    assert len(joined) == 1 and joined[0].refined
    assert joined[0].voxels == sum(o.voxels for o in chairs[1.66, 0.0]), "the joined instance holds both pieces"
    assert len(chairs[2.1, 0.3]) == 2, "0.7 m apart: farther than the gap"
    assert len(chairs[2.1, 1.0]) == 2, "within the gap, but together wider than any chair"
    # fits_within: turned boxes fit by their own axes
    rng = np.random.default_rng(0)
    box = rng.uniform([-0.8, -0.35, 0.0], [0.8, 0.35, 0.55], size=(2000, 3))
    turn = np.array([[np.cos(0.6), -np.sin(0.6), 0], [np.sin(0.6), np.cos(0.6), 0], [0, 0, 1]])
    assert fits_within(box @ turn.T, (1.6, 0.7, 0.55), 0.05)
    assert not fits_within(box @ turn.T, (1.4, 0.7, 0.55), 0.05)
    assert not fits_within(box @ turn.T, (1.6, 0.7, 0.4), 0.05)


def test_a_shape_completed_as_nothing_is_not_an_object(fused_room):
    """A prior that answers "outside" everywhere has no inside to pose or write: the chair is
    listed, not refined (even with no fit required), and the map is left as it was."""
    import copy

    tsdf_map = copy.deepcopy(fused_room)
    config = ObjectRefinementConfig(min_fit=0.0, min_confidence=0.0, min_observed_voxels=3)
    result = refine_objects(tsdf_map, NAMES, _empty_prior(), config)
    chairs = [o for o in result.objects if o.class_name == "chair"]
    assert len(chairs) == 1 and not chairs[0].refined and chairs[0].fit == 0.0
    assert result.written_voxels == 0 and not result.shapes


def test_priors_used_together_keep_the_shape_that_fits_best(fused_room):
    """Each member completes the object; the set keeps the lowest-cost candidate of any member, so
    a member that completes nothing, or worse, changes nothing."""
    from ssr_ros.objects.weights import ShapePriorSet

    high = ShapePrior(_HighBallNet(1, ShapePriorNetworkConfig(grid_size=16, base_width=2, class_embedding=2, yaw_bins=8)).eval(),
                      ["chair"], {"chair": 1.0})
    config = ObjectRefinementConfig(min_fit=0.0, min_confidence=0.0, min_observed_voxels=3)

    def chair_shape(prior):
        result = refine_objects(fused_room, NAMES, prior, config, write=False)
        chair = [o for o in result.objects if o.class_name == "chair"][0]
        return result.shapes.get(chair.instance_id)

    sphere = _sphere_prior()  # (its yaw head is a randomly initialised network: one instance throughout)
    ball, floating = chair_shape(sphere), chair_shape(high)
    assert ball is not None and floating is not None and ball.cost != floating.cost
    winner = min((ball, floating), key=lambda s: s.cost)
    for members in ([sphere, high], [high, sphere], [_empty_prior(), sphere, high]):
        together = chair_shape(ShapePriorSet(members))
        assert together.cost == pytest.approx(winner.cost, rel=1e-6)
        assert torch.equal(together.sdf, winner.sdf)
        assert len(together.candidates) == len(ball.candidates) + len(floating.candidates)
    assert chair_shape(ShapePriorSet([_empty_prior()])) is None


def test_priors_of_different_contracts_are_not_used_together(tmp_path):
    from ssr_ros.errors import ConfigError
    from ssr_ros.objects.refinement import configured_prior
    from ssr_ros.objects.weights import ShapePriorSet

    other = ShapePrior(_sphere_prior().model, ["chair"], {"chair": 1.5})
    with pytest.raises(ConfigError, match="share class names"):
        ShapePriorSet([_sphere_prior(), other])
    # the packaged default is three priors; a comma-separated list names the members
    assert len(configured_prior(ObjectRefinementConfig()).members) == 3
    paths = []
    for name in ("a.pt", "b.pt"):
        prior = _sphere_prior()
        paths.append(str(save_shape_prior(prior.model, tmp_path / name, prior.class_names, prior.extents)))
    assert len(configured_prior(ObjectRefinementConfig(weights=f"{paths[0]}, {paths[1]}")).members) == 2
    assert len(configured_prior(ObjectRefinementConfig(weights=paths[0])).members) == 1


def test_the_pipeline_stands_objects_on_the_planners_floor_where_none_was_seen(monkeypatch):
    """One floor setting for the map: ``planning.floor_height`` is the floor the planner falls back
    on and the floor objects stand on where no floor was observed."""
    import ssr_ros.objects.refinement as refinement
    from ssr_ros.completion.inference import CompletionConfig
    from ssr_ros.pipeline import MappingPipeline, PipelineConfig
    from ssr_ros.planning import PlanningConfig

    seen = {}

    def record(*args, **kwargs):
        seen.update(kwargs)
        return refinement.RefinementResult([], {}, 0, None, [])

    monkeypatch.setattr(refinement, "refine_objects", record)
    monkeypatch.setattr("ssr_ros.objects.instances.map_region", lambda *args: None)  # an empty map has none
    pipeline = MappingPipeline(PipelineConfig(completion=CompletionConfig(type="none"),
                                              planning=PlanningConfig(floor_height=-0.42)), model=None)
    pipeline.refine_objects(None)
    assert seen["floor_height"] == -0.42
