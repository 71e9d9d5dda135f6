"""atomic_write: files get the permissions of an ordinary new file, whatever writes them."""

from __future__ import annotations

import os
import stat

import pytest

from ssr_ros.atomic_file import atomic_write


@pytest.fixture
def umask():
    def set_mask(mask: int) -> None:
        os.umask(mask)

    previous = os.umask(0o022)
    yield set_mask
    os.umask(previous)


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o002])
def test_written_files_respect_the_umask(tmp_path, umask, mask):
    umask(mask)
    with atomic_write(tmp_path / "a.bin") as handle:
        handle.write(b"x")
    assert stat.S_IMODE((tmp_path / "a.bin").stat().st_mode) == 0o666 & ~mask


def test_map_ply_and_summary_files_get_the_same_permissions(tmp_path, umask):
    import numpy as np

    from ssr_ros.map import SemanticTSDF, TSDFConfig, export_voxels_ply
    from ssr_ros.reconstruction import write_summary

    umask(0o022)
    tsdf_map = SemanticTSDF(TSDFConfig(), num_classes=21)
    tsdf_map.save(tmp_path / "map.ssrmap")
    export_voxels_ply(tmp_path / "voxels.ply", tsdf_map)
    write_summary(tmp_path, {"frames": np.int64(3)})
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in tmp_path.iterdir()}
    assert modes == {"map.ssrmap": 0o644, "voxels.ply": 0o644, "summary.json": 0o644}
