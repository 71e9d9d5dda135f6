"""Which torch device a ``device`` setting names: the one rule every stage and trainer uses."""

from __future__ import annotations

import torch

from ssr_ros.errors import ConfigError


def resolve_device(device: str) -> torch.device:
    """'auto' -> cuda when available else cpu; anything else as given ('cpu', 'cuda', 'cuda:N');
    a name torch does not know raises ConfigError."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(device)
    except RuntimeError as error:
        raise ConfigError(f"device {device!r} is not a torch device: {error}") from error
