"""``RegularizationConfig``: the semantic regularisation stage, declared once."""

from __future__ import annotations

from dataclasses import dataclass, field

from ssr_ros.config import param, validate_config
from ssr_ros.errors import ConfigError
from ssr_ros.regularization.data_cost import DataCostConfig
from ssr_ros.regularization.energy.tv_l1 import TVL1Config


@dataclass
class RegularizationConfig:
    """Optional refinement of the map's labels on dense chunks (after fusion and completion).

    Observed voxels keep their fused values and get a regularised label beside them; voxels
    completion predicted keep their labels unless ``relabel_predicted``; unobserved voxels the
    regulariser finds occupied are kept as *inferred* labels. Nothing observed is overwritten.
    ``data_cost`` and ``tv_l1`` configure the TV-L1 regulariser; the learned one uses the data
    cost its weights were trained with (stored in the weights file).
    """

    type: str = param(
        "none", "regulariser: 'none', 'tv_l1' (multi-label total variation, no training) or 'learned' "
        "(unrolled multi-scale primal-dual network)", choices=["none", "tv_l1", "learned"],
    )
    weights: str = param("", "weights of the learned regulariser; empty = the packaged default")
    chunk_size: int = param(64, "side of the dense chunks the regulariser runs on, voxels", low=8, high=512)
    margin: int = param(8, "context voxels around each chunk's written core (chunks overlap by 2 x margin)", low=0, high=128)
    min_confidence: float = param(
        0.5, "an unobserved voxel becomes an inferred label when its most likely label is a class with at "
        "least this probability", low=0.0, high=1.0,
    )
    relabel_predicted: bool = param(
        False, "relabel the voxels completion predicted (their geometry stays); off: the room layout's and the "
        "objects' labels (plane kind, object class) are better than the regulariser's guesses there (held-out rooms "
        "2000-2002: unobserved-surface mIoU 24.7-28.0 % kept, 17.8-19.1 % relabelled)")
    tv_l1: TVL1Config = field(default_factory=TVL1Config)
    data_cost: DataCostConfig = field(default_factory=DataCostConfig)

    def validate(self) -> "RegularizationConfig":
        validate_config(self)
        if self.chunk_size - 2 * self.margin < 1:
            raise ConfigError(
                f"regularization.chunk_size={self.chunk_size} leaves no core inside margin={self.margin} on each side"
            )
        return self
