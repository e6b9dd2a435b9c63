"""Few-shot fine-tuning of a meta-learned model on a new person (paper §3.3, paper-notes §2.3).

Start state (before the first step), from T source frames x(t) with landmark images y(t):

    ê_NEW = (1/T) Σ_t E(x(t), y(t))            (Eq. 7)
    ψ′    = P ê_NEW                              a free parameter from now on (E and P are not used again)
    w′    = w0 + ê_NEW                           D′(x, y) = V(x, y; θ)ᵀ w′ + b, θ and b from meta-learning

Then G′ (G's weights ψ together with ψ′) minimises L′ = L′_CNT + L′_ADV, with L′_ADV = −D′(x̂, y) + L_FM
(no embedding-match term), and D′ (θ, w′, b) minimises the hinge loss (Eq. 10), alternating, one update each
per batch. The paper's schedule: 40 epochs over the T frames, batches of 8 when T > 1. With T >= 8 a few
frames are held out and training stops early when their content loss stops improving (best state kept).

The networks passed in are never modified: fine-tuning works on copies.
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from talkinghead.config import FinetuneConfig
from talkinghead.losses import adversarial_loss, discriminator_hinge_loss, feature_matching_loss

log = logging.getLogger(__name__)

ContentLoss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""content_loss(generated [B,3,H,W], real [B,3,H,W]) -> scalar, both in [-1, 1]."""
Progress = Callable[[int, int, dict], None]
"""progress(step, total_steps, info) called after every step; info holds the step's losses."""

ADAM_BETAS = (0.0, 0.999)


@dataclass
class FinetuneStart:
    """The fine-tuning start state, straight from the formulas (tests compare it with them)."""

    embedding: torch.Tensor
    """ê_NEW [N], Eq. 7."""
    psi: torch.Tensor
    """ψ′ = P ê_NEW [num_adain_params]."""
    discriminator_w: torch.Tensor
    """w′ = w0 + ê_NEW [N]."""


@dataclass
class FinetuneResult:
    """What fine-tuning produced, and how it went."""

    generator: nn.Module
    """G′: the fine-tuned copy of the generator (ψ)."""
    psi: torch.Tensor
    """ψ′ [num_adain_params], detached."""
    discriminator_w: torch.Tensor
    """w′ [N] after training, detached (the avatar does not need it; reported for inspection)."""
    embedding: torch.Tensor
    """ê_NEW [N] the run started from."""
    steps: int
    epochs: int
    history: list[dict] = field(default_factory=list)
    """One dict per epoch: epoch, step, content (train), holdout (when frames were held out)."""
    holdout_indices: list[int] = field(default_factory=list)
    stopped_early: bool = False
    best_epoch: int | None = None


@torch.no_grad()
def start_state(embedder: nn.Module, generator: nn.Module, discriminator: nn.Module,
                frames: torch.Tensor, landmark_images: torch.Tensor) -> FinetuneStart:
    """ê_NEW, ψ′ and w′ from T frames [T,3,H,W] and their landmark images [T,3,H,W] (in [-1, 1])."""
    _check_pair(frames, landmark_images)
    embedding = embedder(frames, landmark_images).mean(0)  # [T, N] -> [N], Eq. 7
    psi = generator.project(embedding[None])[0]  # ψ′ = P ê_NEW, [num_adain_params]
    discriminator_w = discriminator.w0.detach() + embedding  # w′ = w0 + ê_NEW, [N]
    return FinetuneStart(embedding=embedding.clone(), psi=psi.clone(), discriminator_w=discriminator_w.clone())


def holdout_split(shots: int, config: FinetuneConfig, holdout: int | None = None) -> tuple[list[int], list[int]]:
    """(train indices, held-out indices). Holds out ceil(T/8) frames when T >= config.holdout_min_shots
    (evenly spaced, so a video's frames are not all from one end); ``holdout`` overrides the count (0 = none)."""
    if holdout is None:
        holdout = math.ceil(shots / 8) if shots >= config.holdout_min_shots else 0
    if not 0 <= holdout < shots:
        raise ValueError(f"cannot hold out {holdout} of {shots} source frames; at least one must remain for training")
    held = sorted({round(i) for i in torch.linspace(0, shots - 1, holdout + 2)[1:-1].tolist()}) if holdout else []
    return [i for i in range(shots) if i not in held], held


def finetune(
    embedder: nn.Module,
    generator: nn.Module,
    discriminator: nn.Module,
    frames: torch.Tensor,
    landmark_images: torch.Tensor,
    content_loss: ContentLoss,
    config: FinetuneConfig | None = None,
    *,
    feature_matching_weight: float = 10.0,
    adversarial_weight: float = 1.0,
    epochs: int | None = None,
    steps: int | None = None,
    holdout: int | None = None,
    early_stopping: bool = True,
    seed: int = 0,
    progress: Progress | None = None,
) -> FinetuneResult:
    """Fine-tune G′ (ψ and ψ′) and D′ (θ, w′, b) on T frames [T,3,H,W] with landmark images [T,3,H,W].

    ``epochs`` (default ``config.epochs``) or ``steps`` (total updates; overrides epochs) set the length.
    ``holdout`` frames (default: ceil(T/8) when T >= config.holdout_min_shots) are kept out of training and
    their content loss is measured after every epoch; with ``early_stopping`` training stops after
    ``config.patience`` epochs without improvement and the best state is returned. Deterministic for a seed
    on a given device.
    """
    config = config or FinetuneConfig()
    _check_pair(frames, landmark_images)
    if epochs is not None and epochs <= 0:
        raise ValueError(f"epochs must be positive, got {epochs}")
    if steps is not None and steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    shots = frames.shape[0]
    train_idx, held_idx = holdout_split(shots, config, holdout)
    batch_size = 1 if len(train_idx) == 1 else min(config.batch_size, len(train_idx))
    steps_per_epoch = math.ceil(len(train_idx) / batch_size)
    if steps is None:
        steps = (epochs or config.epochs) * steps_per_epoch
    total_epochs = math.ceil(steps / steps_per_epoch) if steps else 0

    start = start_state(embedder, generator, discriminator, frames, landmark_images)
    with torch.random.fork_rng(devices=[] if frames.device.type == "cpu" else [frames.device]):
        torch.manual_seed(seed)
        # G′: a copy of G whose weights (ψ) train together with the free ψ′.
        g = copy.deepcopy(generator).train()
        d = copy.deepcopy(discriminator).train()
        for p in list(g.parameters()) + list(d.parameters()):
            p.requires_grad_(True)
        projection = getattr(g, "projection", None)
        g_params = [p for name, p in g.named_parameters() if not name.startswith("projection.")]
        if projection is not None:
            projection.requires_grad_(False)  # P is not used after initialisation
        psi = nn.Parameter(start.psi.clone()[None])  # ψ′ [1, P]
        w = nn.Parameter(start.discriminator_w.clone())  # w′ [N]
        # θ and b train; W (one row per training video) and w0 are replaced by w′.
        d_params = [p for name, p in d.named_parameters()
                    if not name.startswith("video_embeddings") and name != "w0"]
        g_opt = torch.optim.Adam(g_params + [psi], lr=config.lr_generator, betas=ADAM_BETAS)
        d_opt = torch.optim.Adam(d_params + [w], lr=config.lr_discriminator, betas=ADAM_BETAS)

        shuffle = torch.Generator().manual_seed(seed)
        train_tensor = torch.tensor(train_idx, dtype=torch.long)
        history: list[dict] = []
        best: tuple[float, int, dict, torch.Tensor] | None = None
        bad_epochs, step, stopped_early = 0, 0, False
        for epoch in range(1, total_epochs + 1):
            order = train_tensor[torch.randperm(len(train_idx), generator=shuffle)]
            losses: list[float] = []
            for batch in order.split(batch_size):
                if step >= steps:
                    break
                batch = batch.to(frames.device)
                x, y = frames[batch], landmark_images[batch]
                info = _step(g, d, psi, w, x, y, content_loss, g_opt, d_opt,
                             feature_matching_weight, adversarial_weight)
                step += 1
                losses.append(info["content"])
                if progress is not None:
                    progress(step, steps, {"epoch": epoch, **info})
            record = {"epoch": epoch, "step": step, "content": sum(losses) / max(len(losses), 1)}
            if held_idx:
                record["holdout"] = _holdout_loss(g, psi, frames, landmark_images, held_idx, content_loss)
                if best is None or record["holdout"] < best[0]:
                    best = (record["holdout"], epoch, copy.deepcopy(g.state_dict()), psi.detach().clone())
                    bad_epochs = 0
                else:
                    bad_epochs += 1
            history.append(record)
            log.debug("fine-tuning epoch %d: %s", epoch, record)
            if held_idx and early_stopping and bad_epochs >= config.patience:
                stopped_early = True
                log.info("fine-tuning stopped early after epoch %d: held-out loss did not improve for %d epochs "
                         "(best %.4f at epoch %d)", epoch, bad_epochs, best[0], best[1])
                break

        best_epoch = None
        if best is not None and early_stopping:
            g.load_state_dict(best[2])
            with torch.no_grad():
                psi.copy_(best[3])
            best_epoch = best[1]
    g.eval()
    g.requires_grad_(False)
    return FinetuneResult(generator=g, psi=psi.detach()[0].clone(), discriminator_w=w.detach().clone(),
                          embedding=start.embedding, steps=step, epochs=len(history), history=history,
                          holdout_indices=held_idx, stopped_early=stopped_early, best_epoch=best_epoch)


def _step(g, d, psi, w, x, y, content_loss, g_opt, d_opt, fm_weight, adv_weight) -> dict:
    batch = x.shape[0]
    psi_b = psi.expand(batch, -1)  # ψ′ shared by every frame of the person, [B, P]
    w_b = w[None].expand(batch, -1)  # w′, [B, N]

    # G′ update: L′ = L_CNT + (−r̂ + L_FM); D is only read here. One D forward per backward (spectral norm
    # runs a power-iteration step per training forward): real and generated frames in one batch [2B, ...].
    d.requires_grad_(False)
    fake = g(y, psi_b)
    v_both, features = d.encode(torch.cat([fake, x]), torch.cat([y, y]))
    fake_features = [f[:batch] for f in features]
    real_features = [f[batch:].detach() for f in features]
    score_fake = d.score(v_both[:batch], w_b.detach())  # r̂ = V(x̂, y)ᵀ w′ + b
    loss_content = content_loss(fake, x)
    loss_fm = feature_matching_loss(fake_features, real_features)
    loss_adv = adversarial_loss(score_fake)  # −r̂
    loss_g = loss_content + adv_weight * loss_adv + fm_weight * loss_fm
    g_opt.zero_grad(set_to_none=True)
    loss_g.backward()
    g_opt.step()
    d.requires_grad_(True)

    # D′ update: hinge on real x and the (detached) generated x̂, Eq. 10.
    v_both, _ = d.encode(torch.cat([x, fake.detach()]), torch.cat([y, y]))
    scores = d.score(v_both, torch.cat([w_b, w_b]))
    loss_d = discriminator_hinge_loss(scores[:batch], scores[batch:])["total"]
    d_opt.zero_grad(set_to_none=True)
    loss_d.backward()
    d_opt.step()
    return {"content": loss_content.item(), "feature_matching": loss_fm.item(),
            "adversarial": loss_adv.item(), "discriminator": loss_d.item()}


@torch.no_grad()
def _holdout_loss(g, psi, frames, landmark_images, indices, content_loss) -> float:
    index = torch.tensor(indices, device=frames.device)
    was_training = g.training
    g.eval()
    fake = g(landmark_images[index], psi.expand(len(indices), -1))
    g.train(was_training)
    return float(content_loss(fake, frames[index]))


def _check_pair(frames: torch.Tensor, landmark_images: torch.Tensor) -> None:
    if frames.ndim != 4 or frames.shape[1] != 3:
        raise ValueError(f"source frames must be [T, 3, H, W], got {tuple(frames.shape)}")
    if landmark_images.shape != frames.shape:
        raise ValueError(f"landmark images {tuple(landmark_images.shape)} must match the frames {tuple(frames.shape)}")
    if frames.shape[0] == 0:
        raise ValueError("fine-tuning needs at least one source frame")
