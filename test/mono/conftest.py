import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "map"))  # analytic scenes

# Small tensors: one intra-op thread avoids OpenMP spin-waits that make every op far slower
# when the CPU is shared with other jobs.
torch.set_num_threads(1)
