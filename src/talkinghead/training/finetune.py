"""Few-shot fine-tuning of a meta-learned model on a new person (paper §3.3, paper-notes §2.3).

Start state (before the first step), from T source frames x(t) with landmark images y(t):

    ê_NEW = (1/T) Σ_t E(x(t), y(t))            (Eq. 7)
    ψ′    = P ê_NEW                              a free parameter from now on (E and P are not used again)
    w′    = w0 + ê_NEW                           D′(x, y) = V(x, y; θ)ᵀ w′ + b, θ and b from meta-learning

Then G′ (G's weights ψ together with ψ′) minimises L′ = L′_CNT + L′_ADV, with L′_ADV = −D′(x̂, y) + L_FM
(no embedding-match term), and D′ (θ, w′, b) minimises the hinge loss (Eq. 10), alternating, one update each
per batch: the G′ update, then the D′ update on the same (detached) x̂. Both are the meta-learning updates of
`training.steps` with W reduced to the one column w′ and ψ′ in the generator's phase; loss weights as
`LossConfig.resolved_weights()`, Adam betas as ``train.betas``. The paper's schedule: 40 epochs over the T
frames, batches of 8 when T > 1. With T >= ``holdout_min_shots`` a few frames are held out: training stops
early when their content loss stops improving (best state kept), and they are kept out of ê_NEW (Eq. 7 runs
over the training frames only), so "T shots" then trains on T - ceil(T/8) frames (`FinetuneResult`).

The warp-guided generator (``needs_sources``, issue 15) renders each target from the person's own frames:
pass ``landmarks`` [T, 68, 2] and fine-tuning builds its (target, sources) pairs with
`training.finetune_pairs` — for T > 1 every training frame is a target rendered from its N nearest OTHER
training frames (N = ``model.inference_sources``, what the avatar animates with), for T = 1 the single frame
is the target of known random warps of itself (``batch_size`` fresh warps per step, where the paper's G
trains on the one image). ψ′, w′ and the updates are the same as for the paper's G.

Only FT-variant models are fine-tuned (the paper's FF model, meta-learned without L_MCH, is used feed-forward):
`require_finetunable`. The networks passed in are never modified: fine-tuning works on copies.
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from talkinghead.config import Config, FinetuneConfig, LossConfig, TrainConfig
from talkinghead.training.distributed import World
from talkinghead.training.finetune_pairs import SourcePairs, check_landmarks, known_warp_pair
from talkinghead.training.steps import Phase, discriminator_update, generator_update, render

log = logging.getLogger(__name__)

ContentLoss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""content_loss(generated [B,3,H,W], real [B,3,H,W]) -> scalar, both in [-1, 1]."""
Progress = Callable[[int, int, dict], None]
"""progress(step, total_steps, info) called after every step; info holds the step's losses."""


def require_finetunable(config_or_variant: Config | str, path: str | Path | None = None) -> None:
    """Raise ValueError (one line) unless the model was meta-learned as the FT variant (with L_MCH)."""
    variant = config_or_variant if isinstance(config_or_variant, str) else config_or_variant.train.variant
    if variant.upper() != "FT":
        raise ValueError(f"{path or 'this model'} was meta-learned as the feed-forward (FF) variant, without L_MCH; "
                         "the paper fine-tunes only FT models: use --steps 0 or an FT checkpoint")


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
    train_indices: list[int] = field(default_factory=list)
    """The source frames fine-tuning trained on and ê_NEW was computed from."""
    holdout_indices: list[int] = field(default_factory=list)
    """The source frames held out for early stopping: in neither the training nor ê_NEW."""
    skipped_steps: int = 0
    """Updates skipped for a non-finite loss."""
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
    weights: Mapping[str, float] | None = None,
    betas: tuple[float, float] | None = None,
    variant: str = "FT",
    epochs: int | None = None,
    steps: int | None = None,
    holdout: int | None = None,
    early_stopping: bool = True,
    seed: int = 0,
    progress: Progress | None = None,
    landmarks: torch.Tensor | np.ndarray | None = None,
    line_width: float | None = None,
    num_sources: int | None = None,
) -> FinetuneResult:
    """Fine-tune G′ (ψ and ψ′; with ``config.parts`` = ``warp`` only the warp parts) and D′ (θ, w′, b) on T
    frames [T,3,H,W] with landmark images [T,3,H,W].

    ``content_loss`` is the weighted L_CNT (e.g. `losses.ContentLoss`); ``weights`` (default: the paper's,
    `LossConfig.resolved_weights()`) weight L_ADV's terms; ``betas``: Adam's (default ``TrainConfig.betas``).
    ``variant``: the model's meta-learning variant; FF models are refused (`require_finetunable`).
    ``epochs`` (default ``config.epochs``) or ``steps`` (total updates; overrides epochs) set the length.
    ``holdout`` frames (default: ceil(T/8) when T >= config.holdout_min_shots) are kept out of training and
    their content loss is measured after every epoch; with ``early_stopping`` training stops after
    ``config.patience`` epochs without improvement and the best state is returned. Deterministic for a seed
    on a given device.

    A generator with ``needs_sources`` (the warp family) needs ``landmarks`` [T, 68, 2]: float pixel coordinates
    of the T frames at the model's image size, the points ``landmark_images`` were drawn from. ``line_width``
    (pixels; None = `landmark_image`'s default) draws the T = 1 known warp's source landmark image: pass the
    width the landmark images were drawn with (``line_width_for(size, config.data.landmark_line_width)``).
    ``num_sources``: N, the nearest other frames each target is rendered from (default the generator's
    ``model.inference_sources``, capped at the training frames available). The paper's G ignores all three.
    """
    require_finetunable(variant)
    config = config or FinetuneConfig()
    weights = {**(weights or LossConfig().resolved_weights()), "content": 1.0}  # content_loss comes weighted
    betas = betas or TrainConfig().betas
    _check_pair(frames, landmark_images)
    if epochs is not None and epochs <= 0:
        raise ValueError(f"epochs must be positive, got {epochs}")
    if steps is not None and steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    if config.parts == "warp" and not hasattr(generator, "synthesis"):
        raise ValueError("finetune.parts=warp keeps the warp generator's synthesis branch as meta-learned; this is "
                         "the paper's generator, which has no warp parts: use finetune.parts=all")
    shots = frames.shape[0]
    train_idx, held_idx = holdout_split(shots, config, holdout)
    batch_size = 1 if len(train_idx) == 1 else min(config.batch_size, len(train_idx))
    steps_per_epoch = math.ceil(len(train_idx) / batch_size)
    if steps is None:
        steps = (epochs or config.epochs) * steps_per_epoch
    total_epochs = math.ceil(steps / steps_per_epoch) if steps else 0

    pairs = _training_pairs(generator, frames, landmark_images, landmarks, train_idx, held_idx, seed, line_width,
                            num_sources, warps_per_step=config.batch_size)

    train_frames = torch.tensor(train_idx, device=frames.device)
    # Eq. 7 over the training frames only: the held-out frames judge the result and must not shape it.
    start = start_state(embedder, generator, discriminator, frames[train_frames], landmark_images[train_frames])
    with torch.random.fork_rng(devices=[] if frames.device.type == "cpu" else [frames.device]):
        torch.manual_seed(seed)
        # G′: a copy of G whose weights (ψ) train together with the free ψ′.
        g = copy.deepcopy(generator).train()
        d = copy.deepcopy(discriminator).train()
        for p in list(g.parameters()) + list(d.parameters()):
            p.requires_grad_(True)
        # P is not used after initialisation; with parts=warp neither is S trained.
        frozen = ("projection.",) if config.parts == "all" else ("projection.", "synthesis.")
        for name, p in g.named_parameters():
            p.requires_grad_(not name.startswith(frozen))
        g_params = [p for p in g.parameters() if p.requires_grad]
        psi = nn.Parameter(start.psi.clone()[None], requires_grad=config.parts == "all")  # ψ′ [1, P]
        w = nn.Parameter(start.discriminator_w.clone())  # w′ [N]
        # θ and b train; W (one row per training video) and w0 are replaced by w′.
        d_params = [p for name, p in d.named_parameters()
                    if not name.startswith("video_embeddings") and name != "w0"]
        g_phase = _phase(g_params + ([psi] if psi.requires_grad else []), config.lr_generator, betas)  # G′: ψ, ψ′
        d_phase = _phase(d_params + [w], config.lr_discriminator, betas)  # D′: θ, b and w′
        world = World(device=frames.device)

        shuffle = torch.Generator().manual_seed(seed)
        train_tensor = torch.tensor(train_idx, dtype=torch.long)
        history: list[dict] = []
        best: tuple[float, int, dict, torch.Tensor] | None = None
        bad_epochs, step, skipped, stopped_early = 0, 0, 0, False
        for epoch in range(1, total_epochs + 1):
            order = train_tensor[torch.randperm(len(train_idx), generator=shuffle)]
            losses: list[float] = []
            for batch in order.split(batch_size):
                if step >= steps:
                    break
                x, y, sources = pairs.batch(batch.tolist())
                info = _step(g, d, psi, w, x, y, content_loss, g_phase, d_phase, weights, world, sources)
                step += 1
                if info is None:
                    skipped += 1
                    log.warning("fine-tuning step %d: non-finite loss, update skipped", step)
                    continue
                losses.append(info["content"])
                if progress is not None:
                    progress(step, steps, {"epoch": epoch, **info})
            record = {"epoch": epoch, "step": step, "content": sum(losses) / max(len(losses), 1)}
            if held_idx:
                record["holdout"] = _holdout_loss(g, psi, frames, landmark_images, held_idx, content_loss,
                                                  pairs.holdout)
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
    if config.parts == "warp":  # spectral norm's power iteration moved S's buffers in train mode: put them back
        g.synthesis.load_state_dict(generator.synthesis.state_dict())
    g.eval()
    g.requires_grad_(False)
    return FinetuneResult(generator=g, psi=psi.detach()[0].clone(), discriminator_w=w.detach().clone(),
                          embedding=start.embedding, steps=step, epochs=len(history), history=history,
                          train_indices=train_idx, holdout_indices=held_idx, skipped_steps=skipped,
                          stopped_early=stopped_early, best_epoch=best_epoch)


def _phase(parameters: list[torch.Tensor], lr: float, betas: tuple[float, float]) -> Phase:
    return Phase(parameters, torch.optim.Adam(parameters, lr=lr, betas=betas),
                 torch.amp.GradScaler(enabled=False))  # full precision: a few hundred small steps at most


@dataclass
class _Pairs:
    """What G′ renders each step: (targets x [B,3,H,W], their landmark images y, the sources' episode batch or
    None for the paper's G), and the held-out frames' sources."""

    frames: torch.Tensor
    landmark_images: torch.Tensor
    train: SourcePairs | None = None
    """T > 1, warp family: every training frame's nearest other training frames."""
    single: Callable[[int], dict] | None = None
    """T = 1, warp family: a fresh known-warp pair of the one training frame."""
    holdout: dict | None = None
    """Warp family: the held-out frames' nearest training frames (the episode keys), when frames are held out."""

    def batch(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor, dict | None]:
        if self.single is not None:
            pair = self.single(indices[0])
            return pair["target_image"], pair["target_landmark_image"], pair
        index = torch.tensor(indices, device=self.frames.device)
        sources = None if self.train is None else self.train.select(indices)
        return self.frames[index], self.landmark_images[index], sources


def _training_pairs(generator: nn.Module, frames: torch.Tensor, landmark_images: torch.Tensor,
                    landmarks: torch.Tensor | np.ndarray | None, train_idx: list[int], held_idx: list[int],
                    seed: int, line_width: float | None, num_sources: int | None, warps_per_step: int) -> _Pairs:
    """The pairs fine-tuning trains and early-stops on (module docstring; `training.finetune_pairs`)."""
    if not getattr(generator, "needs_sources", False):
        return _Pairs(frames, landmark_images)
    if landmarks is None:
        raise ValueError(f"{type(generator).__name__} renders from the person's own frames (needs_sources): pass "
                         "landmarks=[T, 68, 2], the pixel coordinates of the T source frames at the model's image "
                         "size (the points their landmark images were drawn from)")
    points = check_landmarks(landmarks, frames)
    count = num_sources if num_sources is not None else generator.cfg.inference_sources  # N (ModelConfig)
    if count < 1:
        raise ValueError(f"num_sources must be >= 1, got {count}")
    model = generator.cfg  # the source rule and the synthesis prior, as inference uses them
    holdout = (SourcePairs.build(frames, landmark_images, points, held_idx, train_idx,
                                 min(count, len(train_idx)), model).batch if held_idx else None)
    if len(train_idx) > 1:
        train = SourcePairs.build(frames, landmark_images, points, train_idx, train_idx,
                                  min(count, len(train_idx) - 1), model)
        return _Pairs(frames, landmark_images, train=train, holdout=holdout)
    rng = np.random.default_rng(seed)
    return _Pairs(frames, landmark_images, holdout=holdout,
                  single=lambda t: known_warp_pair(frames[t], landmark_images[t], points[t], rng, line_width,
                                                   count=warps_per_step, model=model))


def _step(g: nn.Module, d: nn.Module, psi: nn.Parameter, w: nn.Parameter, x: torch.Tensor, y: torch.Tensor,
          content_loss: ContentLoss, g_phase: Phase, d_phase: Phase, weights: Mapping[str, float],
          world: World, sources: dict | None = None) -> dict | None:
    """The G′ update, then the D′ update on the same x̂ (detached): `training.steps`. None when skipped.
    ``sources``: the episode keys of x's sources (warp family), None for the paper's G."""
    fake = render(g, y, psi.expand(x.shape[0], -1), sources)  # ψ′ shared by every frame of the person, [B, P]
    g_logs = generator_update(d, g_phase, fake, x, y, world, content=lambda a, b: {"content": content_loss(a, b)},
                              weights=weights, w_prime=w)
    if g_logs is None:
        return None
    d_logs = discriminator_update(d, d_phase, x, fake.detach(), y, world, w_prime=w)
    if d_logs is None:
        return None
    return {"content": float(g_logs["loss/content"]), "feature_matching": float(g_logs["loss/feature_matching"]),
            "adversarial": float(g_logs["loss/adversarial"]), "discriminator": float(d_logs["loss/discriminator"])}


@torch.no_grad()
def _holdout_loss(g, psi, frames, landmark_images, indices, content_loss, sources=None) -> float:
    index = torch.tensor(indices, device=frames.device)
    was_training = g.training
    g.eval()
    fake = render(g, landmark_images[index], psi.expand(len(indices), -1), sources)
    g.train(was_training)
    return float(content_loss(fake, frames[index]))


def _check_pair(frames: torch.Tensor, landmark_images: torch.Tensor) -> None:
    if frames.ndim != 4 or frames.shape[1] != 3:
        raise ValueError(f"source frames must be [T, 3, H, W], got {tuple(frames.shape)}")
    if landmark_images.shape != frames.shape:
        raise ValueError(f"landmark images {tuple(landmark_images.shape)} must match the frames {tuple(frames.shape)}")
    if frames.shape[0] == 0:
        raise ValueError("fine-tuning needs at least one source frame")
