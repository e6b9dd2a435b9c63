"""What the embedder's identity term (`talkinghead.losses.identity_contrast_loss`, issue 25) adds to a training step.

* ``identity_term``: at warp-128's sizes (batch 4, K = 8 frames, N = the preset's embedding size), the term's
  forward and backward on the per-frame embeddings, against the embedder's own forward and backward on the same
  128 px frames that produce them, in the same run (1 thread, best of 5).
"""

from __future__ import annotations

import time

import torch

from benchmarks.cases import case


def _best_seconds(function, repeats: int = 5) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - started)
    return best


@case("identity_term")
def identity_term() -> dict:
    """The identity term's cost beside the embedder's, warp-128 sizes."""
    from talkinghead.config import preset
    from talkinghead.losses import identity_contrast_loss
    from talkinghead.models.embedder import Embedder

    torch.set_num_threads(1)
    torch.manual_seed(0)
    config = preset("warp-128").model
    batch, k, size = 4, 8, config.image_size
    embedder = Embedder(config)
    frames = torch.rand(batch * k, 3, size, size) * 2 - 1
    drawings = torch.rand(batch * k, 3, size, size) * 2 - 1
    people = torch.arange(batch)
    embeddings = torch.randn(batch, k, config.embedding_dim, requires_grad=True)

    def embedder_step() -> None:
        embedder.zero_grad()
        embedder(frames, drawings).sum().backward()

    def term_step() -> None:
        embeddings.grad = None
        identity_contrast_loss(embeddings, people).backward()

    embedder_s, term_s = _best_seconds(embedder_step, 3), _best_seconds(term_step)
    return {"batch": batch, "frames_per_episode": k, "embedding_dim": config.embedding_dim,
            "embedder_forward_backward_ms": round(embedder_s * 1e3, 2),
            "identity_term_forward_backward_ms": round(term_s * 1e3, 3),
            "term_over_embedder": round(term_s / embedder_s, 5)}
