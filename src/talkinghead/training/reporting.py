"""What a training run shows while it runs: metrics.jsonl, TensorBoard scalars and sample image grids."""

from __future__ import annotations

import json
import logging
import resource
import sys
import time
from pathlib import Path

import torch

from talkinghead.training.learner import Learner
from talkinghead.training.steps import Batch, autocast, render

log = logging.getLogger(__name__)


def peak_memory(device: torch.device) -> dict[str, float]:
    """The process's peak memory so far, in GiB: resident set (``memory/peak_rss_gb``, this process only, not its
    data-loader workers) and, on CUDA, the most the allocator has held (``memory/peak_gpu_gb``)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    values = {"memory/peak_rss_gb": rss / (2**30 if sys.platform == "darwin" else 2**20)}
    if device.type == "cuda":
        values["memory/peak_gpu_gb"] = torch.cuda.max_memory_allocated(device) / 2**30
    return values


class Reporter:
    """metrics.jsonl (always), TensorBoard scalars and image grids (when tensorboard imports); rank 0 only."""

    def __init__(self, run_dir: Path, enabled: bool):
        self.enabled = enabled
        self.run_dir = run_dir
        self.writer = None
        if not enabled:
            return
        self.jsonl = open(run_dir / "metrics.jsonl", "a", encoding="utf-8")  # noqa: SIM115 (closed in close())
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(run_dir / "tensorboard"))
        except Exception as error:  # tensorboard is optional for training itself
            log.warning("TensorBoard logging off (%s); metrics.jsonl still written", error)

    def scalars(self, step: int, values: dict[str, float]) -> None:
        if not self.enabled:
            return
        self.jsonl.write(json.dumps({"time": time.time(), **values}, sort_keys=True) + "\n")
        self.jsonl.flush()
        if self.writer is not None:
            for name, value in values.items():
                if name != "step":
                    self.writer.add_scalar(name, value, step)

    def images(self, step: int, grid: torch.Tensor) -> None:
        """grid: [3, H, W] in [0, 1]."""
        if not self.enabled:
            return
        import cv2

        folder = self.run_dir / "samples"
        folder.mkdir(exist_ok=True)
        pixels = (grid.permute(1, 2, 0).clamp(0, 1) * 255).round().to(torch.uint8).numpy()
        cv2.imwrite(str(folder / f"step-{step:08d}.png"), cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR))
        if self.writer is not None:
            self.writer.add_image("samples/sources|landmarks|generated|target", grid, step)

    def close(self) -> None:
        if self.enabled:
            self.jsonl.close()
            if self.writer is not None:
                self.writer.close()


@torch.no_grad()
def sample_grid(learner: Learner, batch: Batch, max_episodes: int = 4) -> torch.Tensor:
    """One row per episode: K source frames | target landmark image | EMA-generated | target. -> [3, H', W']."""
    batch = {name: t[:max_episodes] for name, t in learner.to_device(batch).items()}
    embedder, generator = learner.ema.averaged["embedder"], learner.ema.averaged["generator"]
    with autocast(learner.world.device, learner.autocast_dtype):
        embedding = learner.embed(embedder, batch)
        generated = render(generator, batch["target_landmark_image"], generator.project(embedding), batch).float()
    row = torch.cat([batch["source_images"].float(), batch["target_landmark_image"][:, None].float(),
                     generated[:, None], batch["target_image"][:, None].float()], dim=1)  # [B, K+3, 3, H, W]
    b, n, c, h, w = row.shape
    grid = row.permute(2, 0, 3, 1, 4).reshape(c, b * h, n * w)
    return ((grid + 1) / 2).cpu()
