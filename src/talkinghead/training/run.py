"""`talkinghead train`: dataset folder + config -> a run directory, in 1 process or under torchrun.

    talkinghead train --data DATASET --preset tiny-64 --run-dir runs/tiny
    torchrun --standalone --nproc-per-node 2 -m talkinghead train --data DATASET --preset paper-256 --run-dir RUN
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path

from talkinghead.config import Config, ConfigError
from talkinghead.training.distributed import init_distributed, shutdown_distributed
from talkinghead.training.loop import Hook, MetaLearner, StopTraining, train

log = logging.getLogger(__name__)


def train_on_dataset(config: Config, data: str | Path, run_dir: str | Path, resume: str = "auto",
                     device: str | None = None, progress: bool = True, hooks: Sequence[Hook] = ()) -> MetaLearner:
    """Meta-learn on a prepared dataset folder (``talkinghead prepare`` or the synthetic writer).

    Reads torchrun's environment (1 process when absent); W gets one row per ``video_index`` of the
    dataset's index, whose content hash is stored in every checkpoint.
    """
    from talkinghead.data.episodes import EpisodeDataset

    if config.model.mouth_blend_power > 0:
        raise ConfigError("model.mouth_blend_power is a run setting of a trained model (inference, fine-tuning, "
                          "evaluation): training episodes mix their sources by the rule's shares alone. Train with "
                          "it at 0 and pass --set model.mouth_blend_power=Q to the trained model")
    world = init_distributed(device)
    try:
        dataset = EpisodeDataset(data, image_size=config.model.image_size,
                                 frames_per_episode=config.data.frames_per_episode, seed=config.train.seed,
                                 line_width=config.data.landmark_line_width * config.model.image_size,
                                 warp_sources=config.model.generator == "warp",  # mesh grids for the warp family
                                 gap_fraction=config.train.gap_fraction,
                                 eye_gap_fraction=config.train.eye_gap_fraction,
                                 generator_sources=config.train.generator_sources or None,
                                 source_blend=config.model.source_blend,
                                 source_blend_power=config.model.source_blend_power,
                                 synthesis_prior=config.model.synthesis_prior,
                                 stretch_limit=config.model.stretch_limit,
                                 lid_prior=config.model.lid_prior,
                                 prior_parts=config.model.prior_input,
                                 eye_gap_shut=config.train.eye_gap_shut)
        if world.is_main:
            log.info("training on %s: %d videos (W rows: %d), %d process(es) on %s, %d episodes per step",
                     data, len(dataset), dataset.num_videos, world.world_size, world.device,
                     config.train.batch_size * world.world_size)
        return train(config, run_dir, dataset, num_videos=dataset.num_videos,
                     dataset_hash=dataset.index.content_hash, resume=resume, world=world, progress=progress,
                     dataset_record=dataset.index.identity_record(), hooks=hooks)
    finally:
        shutdown_distributed()


def time_budget(minutes: float) -> Hook:
    """A hook that ends training cleanly (checkpoint and export written) once ``minutes`` of wall time have passed
    since the hook was made: a fixed compute budget for one `train` invocation (``--resume auto`` continues it).
    Under torchrun rank 0's clock decides, so every rank stops at the same step."""
    if minutes <= 0:
        raise ValueError(f"--max-minutes must be > 0, got {minutes}")
    started = time.monotonic()

    def hook(learner: MetaLearner) -> None:
        over = time.monotonic() - started >= minutes * 60
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            import torch

            flag = torch.tensor([float(over)], device=learner.world.device)
            dist.broadcast(flag, src=0)
            over = bool(flag.item())
        if over:
            raise StopTraining(f"time budget of {minutes:g} minutes used")

    return hook
