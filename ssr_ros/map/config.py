"""``TSDFConfig``: every parameter of the semantic TSDF map, declared once."""

from __future__ import annotations

from dataclasses import dataclass

from ssr_ros.config import param, validate_config
from ssr_ros.errors import ConfigError


@dataclass
class TSDFConfig:
    """Parameters of :class:`~ssr_ros.map.SemanticTSDF` (units: metres unless stated)."""

    voxel_size: float = param(0.05, "edge length of a voxel, metres", low=0.002, high=1.0)
    block_size: int = param(8, "voxels along each edge of an allocation block", choices=[4, 8, 16])
    truncation_voxels: float = param(
        4.0, "TSDF truncation distance in voxels (truncation = truncation_voxels * voxel_size)",
        low=1.0, high=16.0,
    )
    min_depth: float = param(0.1, "depth below this is ignored, metres", low=0.0, high=100.0)
    max_depth: float = param(5.0, "depth above this is ignored, metres", low=0.01, high=100.0)
    weighting: str = param(
        "constant",
        "weight of one measurement: 'constant' (1) or 'inverse_square' (1 / depth^2, trusts near "
        "measurements more)",
        choices=["constant", "inverse_square"],
    )
    weight_dropoff: bool = param(
        True, "behind the measured surface, let the weight fall linearly from 1 at one voxel to 0 "
        "at the truncation distance (reduces the bulging of surfaces seen at grazing angles)",
    )
    max_weight: float = param(
        100.0, "cap of the fused TSDF weight; lower values let the map follow change faster",
        low=1.0, high=10000.0,
    )
    observed_min_weight: float = param(
        0.5, "fused weight from which a voxel counts as observed (and is never overwritten by a "
        "prediction)", low=0.0, high=10000.0,
    )
    space_carving: bool = param(
        True, "also integrate allocated blocks seen in front of the measured surface, so free "
        "space clears voxels of objects that moved away",
    )
    semantic_max_weight: float = param(
        100.0, "cap of a voxel's total semantic evidence; older votes are scaled down past it",
        low=1.0, high=10000.0,
    )
    allocation_stride: int = param(
        4, "pixel stride used to find the blocks a depth image touches (1 = every pixel)",
        low=1, high=16,
    )
    free_space: bool = param(
        True, "record the space camera rays crossed in front of the measured surface (beyond the "
        "truncation band) in a coarse seen-free layer; completion never puts surface there",
    )
    free_space_cell_voxels: int = param(
        2, "edge of a seen-free cell in voxels (2 = 10 cm cells at 5 cm voxels)", low=1, high=8,
    )
    free_space_pixel_stride: int = param(
        8, "pixel stride of the finest rays marched through free space (1 = every pixel); near "
        "the camera only every 2nd, 4th, ... of them marches", low=1, high=16,
    )
    backend: str = param(
        "auto",
        "integration kernel: 'torch' (any device), 'native' (compiled C++ for CPU tensors), "
        "'auto' (native on CPU when it builds, torch otherwise)",
        choices=["auto", "torch", "native"],
    )

    threads: int = param(
        1, "CPU threads of the map's work (integration, with the compiled kernel, meshing, voxel export); "
        "1 is fastest on a small or busy CPU, where every parallel step waits for a worker that the node's "
        "other threads keep from running (2.5-4x slower with 2 threads on a loaded 2-core machine); raise "
        "it on an idle many-core CPU; 0 = torch's setting. The mapper node sets it once for its whole process "
        "(all its threads share torch's CPU thread pool)", low=0, high=256,
    )
    memory_budget_mb: float = param(
        0.0, "memory budget of the map's voxels and seen-free cells, megabytes (10^6 bytes); 0 = unlimited. "
        "After each frame, while over budget, the block regions farthest from the camera are moved to the "
        "on-disk block store (down to 90 % of the budget) and read back when the camera's reach returns to them",
        low=0.0, high=1e7,
    )
    clear_radius_m: float = param(
        0.0, "forget blocks farther than this from the camera after each frame, metres (nothing kept on "
        "disk); 0 = keep everything", low=0.0, high=1e5,
    )
    block_store_dir: str = param(
        "", "directory of the on-disk block store used by memory_budget_mb; empty = a new temporary "
        "directory, removed when the map is reset or closed",
    )

    @property
    def truncation(self) -> float:
        """Truncation distance in metres."""
        return self.truncation_voxels * self.voxel_size

    @property
    def block_extent(self) -> float:
        """Edge length of a block in metres."""
        return self.block_size * self.voxel_size

    def validate(self) -> "TSDFConfig":
        validate_config(self)
        if self.min_depth >= self.max_depth:
            raise ConfigError(
                f"min_depth={self.min_depth} must be smaller than max_depth={self.max_depth}"
            )
        return self
