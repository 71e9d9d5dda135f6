"""Map instances scored against a generated room's objects on the map's grid."""

from __future__ import annotations

import numpy as np

from ssr_ros.data.synthetic import SequenceConfig, SyntheticSequence, TrajectoryConfig, generate_scene
from ssr_ros.map.config import TSDFConfig
from ssr_ros.map.semantic_tsdf import SemanticTSDF
from ssr_ros.objects.evaluation import region_ground_truth, region_instance_matches
from ssr_ros.objects.instances import InstanceConfig, find_instances, map_region


def test_instances_from_exact_2d_ids_match_the_objects_the_map_saw():
    scene = generate_scene(6000)
    sequence = SyntheticSequence(scene, SequenceConfig(width=120, height=90, trajectory=TrajectoryConfig(num_frames=12)),
                                 seed=6000)
    tsdf_map = SemanticTSDF(TSDFConfig(), num_classes=scene.taxonomy.num_classes)
    for i in range(len(sequence)):
        view = sequence.view(i)
        frame = view.frame
        frame.instance_ids = view.rendering.instance_ids
        tsdf_map.integrate(frame)
    region = map_region(tsdf_map)
    instances = find_instances(region, scene.taxonomy.names, InstanceConfig(source="auto"))
    gt = region_ground_truth(scene, region)
    matches, n_pred, n_gt = region_instance_matches(scene, region, instances, gt=gt)
    assert n_pred == len(instances) and n_gt > 0
    assert 0 < len(matches) <= min(n_pred, n_gt)
    assert all(iou >= 0.25 for _, _, iou in matches)
    # every match pairs an instance with an object of its own class
    classes = {o.instance_id: o.class_id for o in scene.objects}
    assert all(instances[p].class_id == classes[g] for p, g, _ in matches)
    # scored on what the map observed only, the same instances match at least as well
    seen, _, _ = region_instance_matches(scene, region, instances, seen_only=True, gt=gt)
    assert len(seen) >= len(matches)
    assert region_instance_matches(scene, region, [], gt=gt)[:2] == ([], 0)


def test_an_object_is_scored_by_the_boxes_of_its_own_class():
    from ssr_ros.objects.evaluation import object_scores, object_surface_points, own_boxes

    scene = generate_scene(2002)  # a bathroom: the bathtub carries a shower curtain above it
    tub = next(o for o in scene.objects if o.name == "bathtub")
    curtain = [b for b in tub.box_indices if scene.taxonomy.names[scene.boxes.class_ids[b]] == "shower curtain"]
    assert curtain and set(own_boxes(scene, tub)) == set(tub.box_indices) - set(curtain)
    floor = scene.boxes.centers[scene.shell["floor"]][2] + scene.boxes.half_extents[scene.shell["floor"]][2]
    assert object_surface_points(scene, tub)[:, 2].max() < floor + 0.65
    # a mesh vertex on the curtain is not the bathtub's; one on the tub's rim is
    c, h = scene.boxes.centers[curtain[0]], scene.boxes.half_extents[curtain[0]]
    on_curtain = c + np.array([0.0, 0.0, h[2] * 0.5]) + 0.004 * np.eye(3)[np.argmin(h)]
    assert object_scores(scene, [tub], on_curtain[None])[tub.instance_id]["points"] == 0
    rim = object_surface_points(scene, tub)
    rim = rim[np.argmax(rim[:, 2])]
    assert object_scores(scene, [tub], rim[None])[tub.instance_id]["points"] == 1
