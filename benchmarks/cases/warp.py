"""Warp-guided generator speed (issue 15): ms per animated frame at 128 and 256 with the N nearest sources, next to
paper-256's generator, the mesh grid's cost, and GFLOPs against this machine's measured conv throughput."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from benchmarks.cases import best_and_median_ms, case
from benchmarks.cases.models import matmul_gflops
from talkinghead.config import preset
from talkinghead.landmarks.mesh import sampling_grid
from talkinghead.models import Generator
from talkinghead.models.warp_generator import WarpGenerator, WarpSources, identity_grid


def conv_gflops(channels: int = 32, size: int = 64, repeats: int = 10) -> float:
    """Throughput of a 3x3 conv of the warp generator's kind (32 -> 32 channels at 64x64, batch 2), GFLOP/s."""
    x = torch.randn(2, channels, size, size)
    weight = torch.randn(channels, channels, 3, 3)
    with torch.inference_mode():
        best, _ = best_and_median_ms(lambda: F.conv2d(x, weight, padding=1), repeats)
    return 2 * 2 * channels * channels * 9 * size * size / (best / 1e3) / 1e9


def warp_inputs(name: str) -> tuple[WarpGenerator, tuple[torch.Tensor, torch.Tensor, WarpSources]]:
    """Preset ``name``'s warp generator (untrained: speed does not depend on training; seed 0) and one frame's
    inputs for it: (landmark image [1, 3, H, W], ψ, the N = ``inference_sources`` sources with mesh-like grids)."""
    torch.manual_seed(0)
    cfg = preset(name).model
    size, n = cfg.image_size, cfg.inference_sources
    generator = WarpGenerator(cfg).eval()
    grids = identity_grid(size, size)[None, None] + 0.03 * torch.randn(1, n, size, size, 2)
    sources = WarpSources(torch.rand(1, n, 3, size, size) * 2 - 1, torch.rand(1, n, 3, size, size) * 2 - 1, grids,
                          torch.rand(1, n))
    with torch.no_grad():
        psi = generator.project(torch.rand(1, cfg.embedding_dim))
    return generator, (torch.rand(1, 3, size, size) * 2 - 1, psi, sources)


def _warp_figures(name: str, repeats: int) -> dict:
    generator, (landmark_image, psi, sources) = warp_inputs(name)
    size, n = landmark_image.shape[-1], sources.images.shape[1]  # [1, 3, H, W]; [1, N, 3, H, W]
    with torch.inference_mode():
        with FlopCounterMode(display=False) as counter:
            generator(landmark_image, psi, sources)
        best, median = best_and_median_ms(lambda: generator(landmark_image, psi, sources), repeats)
    rng = np.random.default_rng(0)
    landmarks = rng.uniform(size * 0.3, size * 0.7, (68, 2))
    moved = landmarks + rng.normal(0, size / 100, landmarks.shape)
    grid_best, _ = best_and_median_ms(lambda: sampling_grid(landmarks, moved, size), repeats)
    flops = counter.get_total_flops()
    return {"parameters": sum(p.numel() for p in generator.parameters()), "sources_per_frame": n,
            "gflops_per_frame": round(flops / 1e9, 3), "ms_per_frame_best": round(best, 1),
            "ms_per_frame_median": round(median, 1), "achieved_gflops_per_s": round(flops / best / 1e6, 1),
            "sampling_grid_ms_per_source": round(grid_best, 2),
            "ms_per_frame_with_grids": round(best + n * grid_best, 1)}


def _paper_figures(repeats: int) -> dict:
    torch.manual_seed(0)
    cfg = preset("paper-256").model
    generator = Generator(cfg).eval()
    landmark_image = torch.rand(1, 3, 256, 256) * 2 - 1
    with torch.inference_mode():
        psi = generator.project(torch.rand(1, cfg.embedding_dim))
        with FlopCounterMode(display=False) as counter:
            generator(landmark_image, psi)
        best, median = best_and_median_ms(lambda: generator(landmark_image, psi), repeats)
    return {"gflops_per_frame": round(counter.get_total_flops() / 1e9, 2), "ms_per_frame_best": round(best, 1),
            "ms_per_frame_median": round(median, 1)}


def _run(threads: int) -> dict:
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        figures = {name: _warp_figures(name, repeats=20) for name in ("warp-128", "warp-256")}
        figures["paper-256"] = _paper_figures(repeats=3)
        figures["conv3x3_32ch_64px_gflops_per_s"] = round(conv_gflops(), 1)
        figures["matmul_fp32_gflops_per_s"] = round(matmul_gflops(repeats=4), 1)
    finally:
        torch.set_num_threads(previous)
    return figures


@case("warp_generator_per_frame")
def warp_generator_per_frame() -> dict:
    """Warp generator ms/frame (N nearest sources, batch 1, fp32) at 128 and 256 vs paper-256, on 1 and 2 threads."""
    return {"targets_ms_per_frame": {"warp-128": 15, "warp-256": 40}, "threads_1": _run(1), "threads_2": _run(2)}
