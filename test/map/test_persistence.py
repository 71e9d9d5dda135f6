"""Save/load round trip, refused files, and PLY export readable by Open3D and plyfile."""

import numpy as np
import pytest
import torch
from plyfile import PlyData

from scenes import Box, Plane, frame_of, map_state, same_state, small_camera
from test_chunks import predicted_sphere
from ssr_ros.errors import MapFileError
from ssr_ros.map import SemanticTSDF, TSDFConfig, export_mesh_ply, export_voxels_ply

CAM = small_camera()


@pytest.fixture
def scene_map():
    tsdf_map = SemanticTSDF(TSDFConfig(voxel_size=0.04, max_weight=50.0), num_classes=21)
    shapes = [Plane((0, 0, 1), 2.0, label=5), Box((-0.3, -0.3, 1.6), (0.3, 0.3, 1.9), label=7)]
    tsdf_map.integrate(frame_of(shapes, CAM, np.eye(4)))
    tsdf_map.write_predictions(torch.tensor([40, 0, 40]), predicted_sphere(), torch.rand(16, 16, 16, 3))
    return tsdf_map


def test_save_load_round_trip_is_exact(scene_map, tmp_path):
    path = tmp_path / "maps" / "scene.ssrmap"
    scene_map.save(path)
    loaded = SemanticTSDF.load(path, device="cpu")
    assert same_state(map_state(scene_map), map_state(loaded))
    assert loaded.config == scene_map.config and loaded.num_classes == 21
    points = torch.rand(500, 3) * torch.tensor([1.6, 1.6, 1.0]) + torch.tensor([-0.8, -0.8, 1.4])
    a, b = scene_map.query(points), loaded.query(points)
    for key in a:
        assert torch.equal(torch.nan_to_num(a[key], nan=-7.0), torch.nan_to_num(b[key], nan=-7.0)), key
    assert loaded.mesh().num_triangles == scene_map.mesh().num_triangles
    assert [p.name for p in path.parent.iterdir()] == ["scene.ssrmap"]  # no temporary left behind


def test_copy_equals_the_map_and_is_independent_of_it(scene_map):
    copy = scene_map.copy()
    assert same_state(map_state(scene_map), map_state(copy))
    assert copy.config == scene_map.config and copy.frames_integrated == scene_map.frames_integrated
    before = map_state(scene_map)
    copy.write_predictions(torch.tensor([0, 0, 40]), predicted_sphere(), torch.rand(16, 16, 16, 3))
    copy.integrate(frame_of([Plane((0, 0, 1), 1.8, label=3)], CAM, np.eye(4)))
    assert same_state(before, map_state(scene_map))  # the original did not change
    assert not same_state(before, map_state(copy))


def test_foreign_corrupt_and_truncated_files_are_refused(scene_map, tmp_path):
    path = tmp_path / "scene.ssrmap"
    scene_map.save(path)
    raw = path.read_bytes()
    foreign = tmp_path / "foreign.ply"
    foreign.write_bytes(b"ply\nformat ascii 1.0\nend_header\n")
    with pytest.raises(MapFileError, match="not an ssr_ros map"):
        SemanticTSDF.load(foreign)
    corrupt = tmp_path / "corrupt.ssrmap"
    flipped = bytearray(raw)
    flipped[-100] ^= 0xFF
    corrupt.write_bytes(bytes(flipped))
    with pytest.raises(MapFileError, match="checksum"):
        SemanticTSDF.load(corrupt)
    truncated = tmp_path / "truncated.ssrmap"
    truncated.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(MapFileError, match="truncated"):
        SemanticTSDF.load(truncated)
    with pytest.raises(MapFileError, match="cannot read"):
        SemanticTSDF.load(tmp_path / "missing.ssrmap")


def test_failed_save_keeps_the_previous_file(scene_map, tmp_path, monkeypatch):
    path = tmp_path / "scene.ssrmap"
    scene_map.save(path)
    before = path.read_bytes()

    def broken_fsync(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("ssr_ros.atomic_file.os.fsync", broken_fsync)
    with pytest.raises(MapFileError, match="No space"):
        scene_map.save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["scene.ssrmap"]


def test_mesh_ply_opens_in_open3d_with_labels(scene_map, tmp_path):
    o3d = pytest.importorskip("open3d")
    mesh = scene_map.mesh()
    path = tmp_path / "mesh.ply"
    export_mesh_ply(path, mesh)
    loaded = o3d.io.read_triangle_mesh(str(path))
    assert len(loaded.vertices) == mesh.num_vertices and len(loaded.triangles) == mesh.num_triangles
    assert np.allclose(np.asarray(loaded.vertex_colors), mesh.colors / 255.0, atol=1e-6)
    ply = PlyData.read(str(path))
    assert np.array_equal(ply["vertex"]["label"], mesh.labels)
    assert np.array_equal(ply["vertex"]["predicted"].astype(bool), mesh.predicted)
    export_mesh_ply(tmp_path / "labels.ply", mesh, color_by="label")
    from ssr_ros.taxonomy import ClassTaxonomy

    palette = ClassTaxonomy.load().colors
    v = PlyData.read(str(tmp_path / "labels.ply"))["vertex"]
    assert np.array_equal(np.stack([v["red"], v["green"], v["blue"]], 1), palette[mesh.labels])


def test_voxel_ply_holds_surface_voxels(scene_map, tmp_path):
    o3d = pytest.importorskip("open3d")
    path = tmp_path / "voxels.ply"
    count = export_voxels_ply(path, scene_map, which="surface")
    cloud = o3d.io.read_point_cloud(str(path))
    assert len(cloud.points) == count > 0
    v = PlyData.read(str(path))["vertex"]
    assert (np.abs(v["tsdf"]) < scene_map.voxel_size).all()
    assert set(np.unique(v["label"])) >= {5, 7}


def _split(raw: bytes) -> tuple[dict, bytes, bytes]:
    """(header, stored header checksum, arrays) of a version-3 map file."""
    import json
    import struct

    (length,) = struct.unpack("<I", raw[8:12])
    return json.loads(raw[12 : 12 + length]), raw[12 + length : 16 + length], raw[16 + length :]


def _assemble(header: dict, tail: bytes) -> bytes:
    import json
    import struct

    from ssr_ros.map.map_file import MAGIC

    text = json.dumps(header).encode()
    return MAGIC + struct.pack("<I", len(text)) + text + tail


def test_a_changed_header_value_is_refused(scene_map, tmp_path):
    """One digit of voxel_size changed (0.04 -> 0.07) must not load as a different map."""
    path = tmp_path / "scene.ssrmap"
    scene_map.save(path)
    raw = path.read_bytes()
    assert b'"voxel_size": 0.04' in raw
    edited = tmp_path / "edited.ssrmap"
    edited.write_bytes(raw.replace(b'"voxel_size": 0.04', b'"voxel_size": 0.07', 1))
    with pytest.raises(MapFileError, match="header checksum"):
        SemanticTSDF.load(edited)
    header, crc, arrays = _split(raw)
    header["version"] = 2  # a checksummed header passed off as the previous version
    posing = tmp_path / "posing.ssrmap"
    posing.write_bytes(_assemble(header, crc + arrays))
    with pytest.raises(MapFileError, match="corrupt"):
        SemanticTSDF.load(posing)


def test_the_previous_format_version_still_loads(scene_map, tmp_path):
    path = tmp_path / "scene.ssrmap"
    scene_map.save(path)
    header, _, arrays = _split(path.read_bytes())
    assert header["version"] == 3
    header["version"] = 2
    old = tmp_path / "version2.ssrmap"
    old.write_bytes(_assemble(header, arrays))  # version 2: no header checksum
    loaded = SemanticTSDF.load(old)
    assert same_state(map_state(scene_map), map_state(loaded))


def test_read_map_refuses_a_class_count_the_taxonomy_does_not_have(scene_map, tmp_path):
    """The node's load_map and ssr render open maps through read_map, so both refuse it."""
    from ssr_ros.cli.main import main
    from ssr_ros.map.semantic_tsdf import read_map
    from ssr_ros.taxonomy import ClassTaxonomy

    taxonomy = ClassTaxonomy.load()
    small = SemanticTSDF(TSDFConfig(voxel_size=0.04), num_classes=taxonomy.num_classes + 3)
    small.integrate(frame_of([Plane((0, 0, 1), 2.0, label=1)], CAM, np.eye(4)))
    small.save(tmp_path / "other" / "map.ssrmap")
    with pytest.raises(MapFileError, match="classes but the taxonomy"):
        read_map(tmp_path / "other", "cpu", taxonomy)
    assert main(["render", str(tmp_path / "other"), "--out", str(tmp_path / "view.png"), "--width", "16", "--height", "16"]) != 0
    assert not (tmp_path / "view.png").exists()
    scene_map.save(tmp_path / "good" / "map.ssrmap")
    assert read_map(tmp_path / "good", "cpu", taxonomy).num_classes == taxonomy.num_classes
