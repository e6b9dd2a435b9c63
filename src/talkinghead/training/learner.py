"""What the run's helpers need of the learner: `reporting.sample_grid` draws with its EMA networks, `state`
saves, exports and resumes it.

`loop.MetaLearner` is the learner and imports those helpers; they name this Protocol, one room below both,
instead of importing `MetaLearner` back (which made an import circle). A stand-in learner in a test only has to
provide these members.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import torch
from torch import nn

from talkinghead.config import Config
from talkinghead.training.distributed import World
from talkinghead.training.ema import ExponentialMovingAverage
from talkinghead.training.steps import Batch


class Learner(Protocol):
    """The members of `talkinghead.training.loop.MetaLearner` that reporting and the training state use."""

    config: Config
    world: World
    step: int
    """E/G steps taken."""
    images: int
    """Target images seen, all ranks."""
    ema: ExponentialMovingAverage
    """``ema.averaged["embedder"]`` and ``["generator"]``: the EMA networks that samples and the export use."""
    autocast_dtype: torch.dtype | None

    def to_device(self, batch: Mapping[str, torch.Tensor]) -> Batch: ...

    def embed(self, embedder: nn.Module, batch: Batch) -> torch.Tensor: ...

    def state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]: ...

    def load_state(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any], source: str) -> None: ...

    def export_tensors(self) -> dict[str, torch.Tensor]: ...
