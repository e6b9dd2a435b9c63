"""Evaluation throughput at small-128 (random weights): frames per second of one `talkinghead.evaluate` run,
split into generation (the avatars' batched renders), personalization (feed-forward ψ̂ and a short fine-tuning),
baselines and metrics (SSIM/PSNR/L1, dlib CSIM, dlib AKD; the ground truth's descriptors and landmarks cached).

Kept short for shared CPUs: 2 synthetic videos, T = 1 and 4, 8 hold-out frames, 2 fine-tuning steps with an L1
content loss (the VGG feature networks need weights that are not here), no cross-identity.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import torch

from benchmarks.cases import case


@case("evaluate_small128")
def evaluate_small128() -> dict:
    from talkinghead.checkpoint import model_state, prefixed, save_checkpoint
    from talkinghead.config import preset
    from talkinghead.data.prepare import write_synthetic_dataset
    from talkinghead.evaluate import Backends, EvaluationSettings, evaluate
    from talkinghead.models import Discriminator, Embedder, Generator

    config = preset("small-128")
    torch.manual_seed(0)
    embedder, generator, discriminator = Embedder(config.model), Generator(config.model), Discriminator(config.model, 1)
    tensors = {**prefixed("embedder.", model_state(embedder)), **prefixed("generator.", model_state(generator)),
               **prefixed("discriminator.", {k: v for k, v in model_state(discriminator).items()
                                             if not k.startswith("video_embeddings")})}
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        write_synthetic_dataset(root / "data", num_identities=2, videos_per_identity=1, frames_per_video=12, size=128,
                                seed=11)
        checkpoint = save_checkpoint(root / "export.safetensors", tensors, config, kind="export")
        started = time.perf_counter()
        summary = evaluate(checkpoint, root / "data", root / "out",
                           EvaluationSettings(shots=(1, 4), targets=8, finetune_steps=2, progress=False),
                           Backends(content_loss=lambda fake, real: (fake - real).abs().mean()))
        total = time.perf_counter() - started
    timing = summary["timing"]
    scored = timing["frames_generated"] + 2 * 8 * 2 * 2  # model frames + baseline frames (2 baselines, 2 T, 2 videos)
    return {
        "preset": "small-128", "videos": 2, "shots": [1, 4], "targets": 8, "finetune_steps": 2,
        "frames_generated": timing["frames_generated"],
        "generation_frames_per_s": round(timing["generation_frames_per_s"], 2),
        "metrics_frames_per_s": round(scored / timing["metrics_s"], 2) if timing["metrics_s"] else None,
        "evaluated_frames_per_s": round(scored / total, 2),
        "seconds": {k: round(timing[k], 2) for k in ("personalization_s", "generation_s", "baselines_s", "metrics_s")}
        | {"total": round(total, 2)},
        "torch_threads": torch.get_num_threads(),
    }
