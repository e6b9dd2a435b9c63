"""Parameter counts and FLOPs per frame of the three networks (``talkinghead info``, benchmarks).

The generator is the family ``cfg.generator`` names; the warp generator is counted with its
``model.inference_sources`` sources per frame (grid_sample and the blend are not counted: elementwise).

FLOPs come from torch's flop counter (``torch.utils.flop_counter.FlopCounterMode``: 2 per multiply-add of
convolutions, matrix products and attention; elementwise work and normalization are not counted), on a
single frame (batch 1). The networks are built on the ``meta`` device: shapes only, no memory, no compute.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from talkinghead.config import ModelConfig
from talkinghead.models import build_generator
from talkinghead.models.discriminator import Discriminator
from talkinghead.models.embedder import Embedder
from talkinghead.models.warp_generator import WarpGenerator, WarpSources


def _generator_call(generator: nn.Module, cfg: ModelConfig, frame: torch.Tensor, psi: torch.Tensor):
    """One frame's generator call: the paper G on the landmark image, the warp G with its N inference sources."""
    if not isinstance(generator, WarpGenerator):
        return lambda: generator(frame, psi)
    n, size = cfg.inference_sources, cfg.image_size
    sources = WarpSources(images=torch.zeros(1, n, 3, size, size), landmark_images=torch.zeros(1, n, 3, size, size),
                          grids=torch.zeros(1, n, size, size, 2), distances=torch.zeros(1, n))
    return lambda: generator(frame, psi, sources)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def flops_by_module(run, depth: int = 2) -> tuple[int, dict[str, int]]:
    """Run ``run()`` under the flop counter: (total FLOPs, FLOPs per module name up to ``depth`` dots)."""
    with torch.no_grad(), FlopCounterMode(display=False, depth=depth) as counter:
        run()
    per_module = {name: sum(counts.values()) for name, counts in counter.get_flop_counts().items()
                  if name != "Global"}
    return counter.get_total_flops(), per_module


def model_summary(cfg: ModelConfig) -> dict:
    """Per network: parameters and FLOPs per frame at batch 1 (G: with ψ̂ precomputed; P separately)."""
    size = cfg.image_size
    with torch.device("meta"):
        embedder = Embedder(cfg).eval()
        generator = build_generator(cfg).eval()
        discriminator = Discriminator(cfg, num_videos=1).eval()
        frame = torch.zeros(1, 3, size, size)
        embedding = torch.zeros(1, cfg.embedding_dim)
        psi = torch.zeros(1, generator.num_adain_params)
        video = torch.zeros(1, dtype=torch.long)
        embedder_flops, _ = flops_by_module(lambda: embedder(frame, frame))
        projection_flops, _ = flops_by_module(lambda: generator.project(embedding))
        generator_flops, _ = flops_by_module(_generator_call(generator, cfg, frame, psi))
        discriminator_flops, _ = flops_by_module(lambda: discriminator(frame, frame, video))
    head = count_parameters(discriminator) - count_parameters(discriminator.blocks) - count_parameters(
        discriminator.attention)  # W, w0 and b: the projection head, apart from V's convolutional part
    return {
        "embedder": {"parameters": count_parameters(embedder), "flops_per_frame": embedder_flops},
        "generator": {
            "parameters": count_parameters(generator),
            "parameters_projection": count_parameters(generator.projection),
            "num_adain_params": generator.num_adain_params,
            "flops_per_frame": generator_flops,
            "flops_projection_per_person": projection_flops,
            "family": cfg.generator,
            **({"sources_per_frame": cfg.inference_sources} if cfg.generator == "warp" else {}),
        },
        "discriminator": {
            "parameters_convolutional": count_parameters(discriminator) - head,
            "parameters_per_video": cfg.embedding_dim,
            "flops_per_frame": discriminator_flops,
        },
    }
