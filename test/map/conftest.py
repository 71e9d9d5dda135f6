import os
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

REPO_ROOT = Path(__file__).resolve().parents[2]

# The map's tensors are small in these tests; one intra-op thread avoids OpenMP spin-waits
# that make every op orders of magnitude slower when the CPU is shared with other jobs.
torch.set_num_threads(1)


def shared_dir() -> Path:
    """``$SSR_SHARED_DIR`` or ``<repo>/../shared``."""
    return Path(os.environ.get("SSR_SHARED_DIR", REPO_ROOT.parent / "shared"))


@pytest.fixture
def shared_data() -> Path:
    data = shared_dir() / "data"
    if not data.is_dir():
        pytest.skip(f"real RGB-D data not found at {data} (set SSR_SHARED_DIR or place ../shared beside the repo)")
    return data
