"""Exponential moving average of network weights (used for samples and the inference export).

θ_ema ← decay · θ_ema + (1 − decay) · θ after every E/G update; buffers (spectral-norm power-iteration
vectors) are copied. A decay of 0 makes the EMA a plain copy of the current weights.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class ExponentialMovingAverage(nn.Module):
    """EMA copies of named modules: ``ema.averaged["generator"]`` is the averaged generator (eval mode)."""

    def __init__(self, modules: dict[str, nn.Module], decay: float):
        super().__init__()
        if not 0 <= decay < 1:
            raise ValueError(f"EMA decay must be in [0, 1), got {decay}")
        self.decay = decay
        self.averaged = nn.ModuleDict({name: copy.deepcopy(module).eval() for name, module in modules.items()})
        for parameter in self.averaged.parameters():
            parameter.requires_grad_(False)

    def train(self, mode: bool = True) -> ExponentialMovingAverage:
        return super().train(False)  # the averaged copies are only ever evaluated

    @torch.no_grad()
    def update(self, modules: dict[str, nn.Module]) -> None:
        for name, module in modules.items():
            target = self.averaged[name]
            for averaged, current in zip(target.parameters(), module.parameters(), strict=True):
                averaged.lerp_(current.detach(), 1.0 - self.decay)
            for averaged, current in zip(target.buffers(), module.buffers(), strict=True):
                averaged.copy_(current)
