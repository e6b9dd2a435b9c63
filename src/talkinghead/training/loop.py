"""Meta-learning (paper §3.2): alternating D and E/G updates over K-shot episodes, one readable loop.

One training step on a batch of B episodes (K source frames + 1 target frame each):

1. E runs ONCE on all B·K source frames ([B, K, 3, H, W] -> [B·K, 3, H, W]); ê_i = mean over K (Eq. 1);
   ψ̂_i = P ê_i; x̂ = G(y_target, ψ̂_i) (Eq. 2). The graph is kept for step 3.
2. ``discriminator_steps`` (paper: 2) D updates minimising L_DSC (hinge, Eq. 6) on (x, x̂.detach()): one D
   forward per update on real and fake together; x̂ and ê are NOT recomputed between the updates. θ, w0, b
   step with Adam, the batch's rows of W with SparseAdam. Nothing reaches E or G (x̂ is detached).
3. One E/G update minimising L_CNT + L_ADV (+ L_MCH in the FT variant) with D frozen (θ, w0, b do not
   require grad; the score uses W_i.detach() + w0), so only E, G, P and — through L_MCH alone — the batch's
   rows of W change. Separate backward passes; no summed loss.

The two updates themselves (and mixed precision and the non-finite guard) are `training.steps`, shared with
fine-tuning. A non-finite loss skips that update (and the rest of the step), is counted and logged; after
``train.max_bad_steps`` such steps in a row training stops with `TrainingDiverged`, the last checkpoint intact.
Saving and resuming: `training.state`; metrics and sample grids: `training.reporting`.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.checkpoint import checkpoint as recompute_in_backward

from talkinghead import losses
from talkinghead.checkpoint import load_model_state, model_state, prefixed
from talkinghead.config import Config
from talkinghead.training import state as training_state
from talkinghead.training.distributed import EpisodeSampler, World, all_finite, gather_rows
from talkinghead.training.ema import ExponentialMovingAverage
from talkinghead.training.mouth import MouthCritic, adversarial_ramp, flow_total_variation
from talkinghead.training.reporting import Reporter, peak_memory, sample_grid
from talkinghead.training.state import code_version, load_training_state, save_training_state
from talkinghead.training.steps import Batch, Phase, autocast, discriminator_update, generator_update, render_parts

log = logging.getLogger(__name__)

Hook = Callable[["MetaLearner"], None]


class StopTraining(Exception):
    """Raised by a hook to end training cleanly after the current step (e.g. a time budget): the step is
    checkpointed and `train` returns. Under torchrun every rank's hooks must raise at the same step."""


class TrainingDiverged(RuntimeError):
    """Too many consecutive steps with a non-finite loss."""


class RecomputedFeatures(nn.Module):
    """Recompute a frozen feature network in backward instead of storing its activations (memory option,
    ``train.activation_checkpointing``).

    Only used on the content-loss networks: they are deterministic. E, G and D are not wrapped because their
    spectral norm advances a power iteration on every training forward, which a recomputation would repeat.
    """

    def __init__(self, network: nn.Module):
        super().__init__()
        self.network = network

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        return recompute_in_backward(self.network, images, use_reentrant=False)


class MetaLearner:
    """E, G (with P), D, their optimizers, the EMA and the content-loss networks; `train_step` is one step.

    ``feature_networks``: ``{"vgg19": ..., "vggface": ...}`` or ``{"mobilenet": ...}`` (names as in
    ``LossConfig.resolved_weights()``), see `talkinghead.perceptual_weights.build_feature_networks`.
    """

    def __init__(self, config: Config, embedder: nn.Module, generator: nn.Module, discriminator: nn.Module,
                 feature_networks: Mapping[str, nn.Module], world: World | None = None):
        self.config = config
        self.world = world or World()
        device = self.world.device
        train = config.train
        self.memory_format = torch.channels_last if train.channels_last else torch.contiguous_format
        self.embedder = embedder.to(device, memory_format=self.memory_format).train()
        self.generator = generator.to(device, memory_format=self.memory_format).train()
        self.discriminator = discriminator.to(device, memory_format=self.memory_format).train()
        wrap = RecomputedFeatures if train.activation_checkpointing else (lambda network: network)
        self.feature_networks = {name: wrap(network.to(device, memory_format=self.memory_format))
                                 for name, network in feature_networks.items()}
        self.weights = config.loss.resolved_weights()
        self.use_match = train.variant == "FT"  # L_MCH only in the FT variant

        # Parameter ownership: E+G+P | D's θ, w0, b | W (sparse rows).
        if train.parts == "synthesis":  # E, P and the synthesis branch; the warp parts stay as they start
            if not hasattr(self.generator, "synthesis"):
                raise ValueError("train.parts=synthesis trains the warp generator's synthesis branch only; this is "
                                 "the paper's generator, which has no warp parts: use train.parts=all")
            kept = ("synthesis.", "projection.")
            for name, parameter in self.generator.named_parameters():
                parameter.requires_grad_(name.startswith(kept))
        self.generator_parameters = [*self.embedder.parameters(),
                                     *(p for p in self.generator.parameters() if p.requires_grad)]
        self.video_embeddings = self.discriminator.video_embeddings.weight  # W: [num_videos, N]
        self.discriminator_parameters = [p for name, p in self.discriminator.named_parameters()
                                         if not name.startswith("video_embeddings.")]
        self.optimizer_generator = torch.optim.Adam(self.generator_parameters, lr=train.lr_generator,
                                                    betas=train.betas)
        self.optimizer_discriminator = torch.optim.Adam(self.discriminator_parameters, lr=train.lr_discriminator,
                                                        betas=train.betas)
        self.optimizer_video_embeddings = torch.optim.SparseAdam([self.video_embeddings],
                                                                 lr=train.lr_discriminator, betas=train.betas)
        # Which rows W_i have been set from their video's first embedding (FT variant, see _start_video_rows).
        self.video_started = torch.zeros(self.video_embeddings.shape[0], dtype=torch.uint8, device=device)
        self.ema = ExponentialMovingAverage({"embedder": self.embedder, "generator": self.generator},
                                            train.ema_decay)
        fp16 = train.mixed_precision == "fp16"
        self.scaler_generator = torch.amp.GradScaler(device.type, enabled=fp16)
        self.scaler_discriminator = torch.amp.GradScaler(device.type, enabled=fp16)
        self.autocast_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(train.mixed_precision)
        self.discriminator_phase = Phase(self.discriminator_parameters, self.optimizer_discriminator,
                                         self.scaler_discriminator, self.video_embeddings,
                                         self.optimizer_video_embeddings)
        self.generator_phase = Phase(self.generator_parameters, self.optimizer_generator, self.scaler_generator,
                                     self.video_embeddings, self.optimizer_video_embeddings)

        # The mouth's own terms (issue 25): a lip discriminator and mouth-crop L1, when their weights are > 0.
        mouth_terms = ("mouth_pixel", "lip_adversarial", "lip_feature_matching")
        lip_lr = train.lr_lip_discriminator if train.lr_lip_discriminator is not None else train.lr_discriminator
        self.mouth = (MouthCritic(config.model.image_size, lip_lr, train.betas, device,
                                  fp16=train.mixed_precision == "fp16", pool_size=train.lip_pool_size)
                      if any(self.weights[name] > 0 for name in mouth_terms) else None)
        self.train_lip_discriminator = self.weights["lip_adversarial"] > 0 or self.weights["lip_feature_matching"] > 0
        self._parts: dict[str, torch.Tensor] = {}
        self._frame_embeddings = torch.empty(0)
        self._warned_dead_discriminator = False

        self.step = 0  # E/G steps taken (bad ones included: the data stream is tied to it)
        self.images = 0  # target images seen, all ranks
        self.bad_steps = 0
        self.consecutive_bad_steps = 0

    # --- the step ------------------------------------------------------------------------------------------

    def to_device(self, batch: Mapping[str, torch.Tensor]) -> Batch:
        moved = {}
        for name, tensor in batch.items():
            tensor = tensor.to(self.world.device, non_blocking=True)
            if tensor.dim() == 4 and self.memory_format is torch.channels_last:
                tensor = tensor.contiguous(memory_format=torch.channels_last)
            moved[name] = tensor
        return moved

    def embed(self, embedder: nn.Module, batch: Batch) -> torch.Tensor:
        """ê_i = (1/K) Σ_k E(x_i(s_k), y_i(s_k)) (Eq. 1): E runs once on all B·K frames. -> [B, N]."""
        return self.embed_frames(embedder, batch).mean(dim=1)

    @staticmethod
    def embed_frames(embedder: nn.Module, batch: Batch) -> torch.Tensor:
        """E(x_i(s_k), y_i(s_k)) of every source frame, before Eq. 1's mean: [B, K, N]."""
        frames, landmark_images = batch["source_images"], batch["source_landmark_images"]
        b, k = frames.shape[:2]
        embeddings = embedder(frames.flatten(0, 1), landmark_images.flatten(0, 1))  # [B*K, 3, H, W] -> [B*K, N]
        return embeddings.view(b, k, -1)

    def generate(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """(ê [B, N], x̂ = G(y_target, P ê) [B, 3, H, W]) with the current (training) E and G; the warp
        generator's parts are kept for the step's loss (``residual_flow`` for the smoothness term)."""
        with autocast(self.world.device, self.autocast_dtype):
            self._frame_embeddings = self.embed_frames(self.embedder, batch)  # [B, K, N], for the identity term
            embedding = self._frame_embeddings.mean(dim=1)  # ê (Eq. 1)
            self._parts = render_parts(self.generator, batch["target_landmark_image"],
                                       self.generator.project(embedding), batch, self.config.train.generator_sources)
        return embedding, self._parts["output"]

    def step_weights(self) -> dict[str, float]:
        """The loss weights of this step: the adversarial terms ramped in after ``train.adversarial_warmup``."""
        train = self.config.train
        ramp = adversarial_ramp(self.step, train.adversarial_warmup, train.adversarial_ramp)
        weights = dict(self.weights)
        for name in ("adversarial", "lip_adversarial"):
            weights[name] *= ramp
        return weights

    def discriminator_step(self, batch: Batch, generated: torch.Tensor) -> dict[str, torch.Tensor] | None:
        """One D update on L_DSC (Eq. 6). ``generated`` must be detached. None when the loss is not finite."""
        logs = discriminator_update(self.discriminator, self.discriminator_phase, batch["target_image"], generated,
                                    batch["target_landmark_image"], self.world, video_index=batch["video_index"],
                                    autocast_dtype=self.autocast_dtype)
        if logs is not None and self.mouth is not None and self.train_lip_discriminator:
            lip = self.mouth.discriminator_update(batch["target_image"], generated, batch["target_landmark_image"],
                                                  batch["target_landmarks"], self.world)
            if lip is None:
                return None
            logs.update(lip)
        return logs

    def generator_step(self, batch: Batch, embedding: torch.Tensor,
                       generated: torch.Tensor) -> dict[str, torch.Tensor] | None:
        """One E/G/P update on L_CNT + L_ADV (+ L_MCH), D frozen. None when the loss is not finite."""
        weights = self.step_weights()

        def content(generated: torch.Tensor, real: torch.Tensor) -> dict[str, torch.Tensor]:
            terms = self.content_terms(generated, real)
            if self.mouth is not None:
                terms.update(self.mouth.generator_terms(generated, real, batch["target_landmark_image"],
                                                        batch["target_landmarks"], weights))
            if weights["prior_pixel"] > 0:  # Config.validate: only with the warp generator's synthesis prior
                terms["prior_pixel"] = losses.prior_pixel_loss(generated, real, self._parts["prior"])
            if weights["flow_smoothness"] > 0 and "residual_flow" in self._parts:
                terms["flow_smoothness"] = flow_total_variation(self._parts["residual_flow"])
            if weights["identity"] > 0:
                terms["identity"] = losses.identity_contrast_loss(
                    self._frame_embeddings, batch["identity_index"], self.config.loss.identity_temperature)
            return terms

        return generator_update(self.discriminator, self.generator_phase, generated, batch["target_image"],
                                batch["target_landmark_image"], self.world, content=content,
                                weights=weights, video_index=batch["video_index"],
                                embedding=embedding if self.use_match else None,
                                autocast_dtype=self.autocast_dtype,
                                measure_gradients=(self.step + 1) % self.config.train.log_every == 0)

    def content_terms(self, generated: torch.Tensor, real: torch.Tensor) -> dict[str, torch.Tensor]:
        """L_CNT per feature network, unweighted (`losses.content_losses`)."""
        return losses.content_losses(self.feature_networks, generated, real)

    def train_step(self, batch: Mapping[str, torch.Tensor]) -> dict[str, float]:
        """D updates then one E/G update on one batch; returns the step's logged values (floats)."""
        batch = self.to_device(batch)
        embedding, generated = self.generate(batch)
        undo = self._start_video_rows(batch["video_index"], embedding.detach()) if self.use_match else None
        fake = generated.detach()  # shared by the D updates, never recomputed between them
        logs: dict[str, torch.Tensor] = {}
        ok = all_finite(generated, self.world)
        for _ in range(self.config.train.discriminator_steps if ok else 0):
            result = self.discriminator_step(batch, fake)
            if result is None:
                ok = False
                break
            logs.update(result)
        if ok and self.mouth is not None and self.train_lip_discriminator:
            self.mouth.remember(batch["target_image"], fake, batch["target_landmark_image"], batch["target_landmarks"])
        if ok:
            result = self.generator_step(batch, embedding, generated)
            ok = result is not None
            if ok:
                logs.update(result)
        self.step += 1
        self.images += generated.shape[0] * self.world.world_size
        if ok:
            self.ema.update({"embedder": self.embedder, "generator": self.generator})
            self.consecutive_bad_steps = 0
        else:
            if undo is not None:
                undo()  # a skipped step changes nothing, W's first rows included
            self.bad_steps += 1
            self.consecutive_bad_steps += 1
            log.warning("step %d: non-finite loss, update skipped (%d in a row, %d in all)", self.step,
                        self.consecutive_bad_steps, self.bad_steps)
        out = {name: float(value) for name, value in logs.items()}
        out.update(step=self.step, images=self.images, bad_steps=self.bad_steps, skipped=float(not ok))
        if out.get("discriminator/active") == 0 and not self._warned_dead_discriminator:
            self._warned_dead_discriminator = True
            log.warning("step %d: every entry of the discriminator's V(x, y) is zero (its final ReLU): D scores every "
                        "frame with the constant b and gets no gradient, so the adversarial term is gone and D will "
                        "not recover; resume from an earlier checkpoint with a lower train.lr_discriminator",
                        self.step)
        return out

    @torch.no_grad()
    def _start_video_rows(self, video_index: torch.Tensor, embedding: torch.Tensor) -> Callable[[], None] | None:
        """W_i ← ê_i the first time video i is seen (FT variant).

        The paper leaves W's initialization open. From a small random W, L_MCH (an L1 pull of ê_i toward W_i,
        weight 80, or 10 in v2) drives the embedder's pre-ReLU outputs below zero and the ReLU after sum pooling
        never lets them back: measured on synthetic heads, every embedder output was 0 within 50 steps at both
        weights and at the paper's learning rates, so ê no longer depends on the person. Starting W_i at ê_i
        keeps the pull local, which is what L_MCH is for (W_i ≈ ê_i, later w′ = w0 + ê_NEW).
        Returns a function that undoes it (for a skipped step), or None when no row was new.
        """
        indices, rows = gather_rows(video_index, embedding.to(self.video_embeddings.dtype), self.world)
        is_new = self.video_started[indices] == 0
        if not bool(is_new.any()) or not bool(torch.isfinite(rows).all()):
            return None
        new = indices[is_new].unique()
        previous = self.video_embeddings[new].clone()
        for index, row in zip(indices[is_new].tolist(), rows[is_new], strict=True):  # a repeat: last rank's wins
            self.video_embeddings[index] = row
        self.video_started[new] = 1

        def undo() -> None:
            with torch.no_grad():
                self.video_embeddings[new] = previous
                self.video_started[new] = 0

        return undo

    # --- state ----------------------------------------------------------------------------------------------

    def modules(self) -> dict[str, nn.Module]:
        modules = {"embedder": self.embedder, "generator": self.generator, "discriminator": self.discriminator,
                   "ema.embedder": self.ema.averaged["embedder"], "ema.generator": self.ema.averaged["generator"]}
        if self.mouth is not None:
            modules["lip_discriminator"] = self.mouth.discriminator
        return modules

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        optimizers = {"generator": self.optimizer_generator, "discriminator": self.optimizer_discriminator,
                      "video_embeddings": self.optimizer_video_embeddings}
        if self.mouth is not None:
            optimizers["lip_discriminator"] = self.mouth.optimizer
        return optimizers

    def state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """Everything a resume needs, as (tensors, JSON metadata); RNG states are added by `save`."""
        tensors: dict[str, torch.Tensor] = {}
        meta: dict[str, Any] = {"step": self.step, "images": self.images, "bad_steps": self.bad_steps,
                                "optimizers": {}}
        for name, module in self.modules().items():
            tensors.update(prefixed(f"{name}.", model_state(module)))
        tensors["video_started"] = self.video_started.detach().cpu().clone()
        if self.mouth is not None:
            tensors.update(prefixed("lip_pool.", self.mouth.pool_state()))
        for name, optimizer in self.optimizers().items():
            optimizer_tensors, optimizer_meta = training_state.optimizer_to_tensors(optimizer, f"optimizer.{name}")
            tensors.update(optimizer_tensors)
            meta["optimizers"][name] = optimizer_meta
        for name, scaler in (("generator", self.scaler_generator), ("discriminator", self.scaler_discriminator)):
            meta[f"scaler.{name}"] = {k: (float(v) if isinstance(v, torch.Tensor) else v)
                                      for k, v in scaler.state_dict().items()}
        return tensors, meta

    def load_state(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any], source: str) -> None:
        for name, module in self.modules().items():
            load_model_state(module, tensors, prefix=f"{name}.", source=source)
        if "video_started" in tensors:
            self.video_started.copy_(tensors["video_started"])
        if self.mouth is not None:
            self.mouth.load_pool_state({name[len("lip_pool."):]: t for name, t in tensors.items()
                                        if name.startswith("lip_pool.")})
        for name, optimizer in self.optimizers().items():
            # The saved param_groups carry the old run's lr and betas; the config's apply (the resume log says so).
            hyperparameters = [{"lr": g["lr"], "betas": g["betas"]} for g in optimizer.param_groups]
            training_state.optimizer_from_tensors(optimizer, tensors, meta["optimizers"][name], f"optimizer.{name}")
            for group, wanted in zip(optimizer.param_groups, hyperparameters, strict=True):
                group.update(wanted)
        for name, scaler in (("generator", self.scaler_generator), ("discriminator", self.scaler_discriminator)):
            if meta.get(f"scaler.{name}"):
                scaler.load_state_dict(meta[f"scaler.{name}"])
        self.step, self.images, self.bad_steps = meta["step"], meta["images"], meta["bad_steps"]
        self.consecutive_bad_steps = 0

    def export_tensors(self) -> dict[str, torch.Tensor]:
        """The inference export: EMA E and G (with P) + D's V, w0 and b — not W (training videos only)."""
        discriminator = {name: t for name, t in model_state(self.discriminator).items()
                         if not name.startswith("video_embeddings.")}
        lip = {} if self.mouth is None else prefixed("lip_discriminator.", model_state(self.mouth.discriminator))
        return {**prefixed("embedder.", model_state(self.ema.averaged["embedder"])),
                **prefixed("generator.", model_state(self.ema.averaged["generator"])),
                **prefixed("discriminator.", discriminator), **lip}


# --- the loop ----------------------------------------------------------------------------------------------

class _EpochIndexed(torch.utils.data.Dataset):
    """Items addressed by (index, epoch): the episode's frames follow the sampler's epoch in every worker."""

    def __init__(self, dataset: torch.utils.data.Dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, key: tuple[int, int]) -> Batch:
        index, epoch = key
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)
        return self.dataset[index]


class _WithEpoch(torch.utils.data.Sampler):
    def __init__(self, sampler: EpisodeSampler):
        self.sampler = sampler

    def __iter__(self) -> Iterator[tuple[int, int]]:
        per_epoch = len(self.sampler.sampler)
        for position, index in enumerate(self.sampler, start=self.sampler.start):
            yield index, position // per_epoch


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _broadcast_weights(modules: Sequence[nn.Module], world: World) -> None:
    """Start every rank from rank 0's weights (init is seeded alike, this makes it certain)."""
    if not world.distributed:
        return
    import torch.distributed as dist

    for module in modules:
        for tensor in [*module.parameters(), *module.buffers()]:
            dist.broadcast(tensor.data, src=0)


def train(config: Config, run_dir: str | Path, dataset: torch.utils.data.Dataset, *, num_videos: int,
          dataset_hash: str | None = None, resume: str = "auto", world: World | None = None,
          feature_networks: Mapping[str, nn.Module] | None = None, hooks: Sequence[Hook] = (),
          progress: bool = True, dataset_record: dict | None = None) -> MetaLearner:
    """Meta-learn E, G, D on ``dataset`` (items as `talkinghead.data.episodes.EpisodeDataset`) until
    ``config.train.steps`` E/G steps, writing checkpoints, the export, metrics and samples under ``run_dir``.

    ``dataset_record``: who is in the training data (`DatasetIndex.identity_record`), stored in every
    checkpoint and the export so evaluation can refuse those people. ``resume``: ``auto`` | ``never`` | a
    checkpoint path. ``hooks`` run after every step (tests use them to
    stop a run between steps). ``feature_networks`` default to the config's (`build_feature_networks`).
    """
    from talkinghead.models import Discriminator, Embedder, build_generator
    from talkinghead.training.warm_start import load_warm_start, merge_identity_records, read_warm_start

    world = world or World()
    run_dir = Path(run_dir)
    train_cfg = config.train
    resume_path = training_state.resolve_resume(resume, run_dir)
    if world.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.json").write_text(config.to_json() + "\n", encoding="utf-8")
    if feature_networks is None:
        from talkinghead.perceptual_weights import build_feature_networks

        feature_networks = build_feature_networks(config.loss)

    seed_everything(train_cfg.seed)  # same initial weights on every rank
    embedder, generator = Embedder(config.model), build_generator(config.model)  # the config's family
    discriminator = Discriminator(config.model, num_videos)
    learner = MetaLearner(config, embedder, generator, discriminator, feature_networks, world)
    _broadcast_weights([learner.embedder, learner.generator, learner.discriminator, learner.ema,
                        *([learner.mouth.discriminator] if learner.mouth is not None else [])], world)
    seed_everything(train_cfg.seed + world.rank)  # per-rank streams from here on
    dataset_record = dict(dataset_record or {})
    warm_start = None
    if train_cfg.init_from:
        # Its people count as seen by this run too (evaluation refuses them), resumed or not.
        warm_checkpoint, warm_start = read_warm_start(train_cfg.init_from, expected_model=config.model)
        dataset_record = merge_identity_records(dataset_record, warm_start["dataset"])
        if resume_path is None:
            load_warm_start(learner.modules(), warm_checkpoint)
    if resume_path is not None:
        load_training_state(learner, resume_path, dataset_hash)
    metadata = {"dataset_hash": dataset_hash or "", "num_videos": num_videos,
                "feature_network": config.loss.feature_network, "code_version": code_version(),
                "dataset": dataset_record}  # who was trained on: evaluation refuses them
    if warm_start is not None:
        metadata["warm_start"] = warm_start

    per_rank_start = learner.step * train_cfg.batch_size
    sampler = _WithEpoch(EpisodeSampler(len(dataset), world, train_cfg.seed, start=per_rank_start))  # type: ignore[arg-type]
    loader = torch.utils.data.DataLoader(
        _EpochIndexed(dataset), batch_size=train_cfg.batch_size, sampler=sampler, drop_last=True,
        num_workers=train_cfg.num_workers, pin_memory=world.device.type == "cuda",
        generator=torch.Generator().manual_seed(train_cfg.seed),  # keeps the global RNG untouched
    )
    reporter = Reporter(run_dir, world.is_main)
    from tqdm import tqdm

    bar = tqdm(total=train_cfg.steps, initial=learner.step, unit="step", dynamic_ncols=True,
               disable=not (progress and world.is_main))
    started, started_step = time.perf_counter(), learner.step
    batches = iter(loader)
    try:
        while learner.step < train_cfg.steps:
            batch = next(batches)
            values = learner.train_step(batch)
            bar.update(1)
            stopping = learner.consecutive_bad_steps >= train_cfg.max_bad_steps
            if learner.step % train_cfg.log_every == 0 or learner.step == train_cfg.steps or stopping:
                elapsed = max(time.perf_counter() - started, 1e-9)
                values["steps_per_second"] = (learner.step - started_step) / elapsed
                values["images_per_second"] = values["steps_per_second"] * train_cfg.batch_size * world.world_size
                values.update(peak_memory(world.device))
                reporter.scalars(learner.step, values)
                bar.set_postfix({k.split("/")[-1]: f"{v:.3g}" for k, v in values.items()
                                 if k in ("loss/generator", "loss/discriminator", "images_per_second")})
            if stopping:
                raise TrainingDiverged(
                    f"{learner.consecutive_bad_steps} consecutive steps with a non-finite loss (up to step "
                    f"{learner.step}); stopped. The last good checkpoint in {run_dir / training_state.CHECKPOINT_DIR} "
                    "is intact: resume it with a lower learning rate (--set train.lr_generator=...), "
                    "mixed_precision=no, or check the data")
            if world.is_main and (learner.step % train_cfg.image_every == 0 or learner.step == train_cfg.steps):
                reporter.images(learner.step, sample_grid(learner, batch))
            saved = (learner.step % train_cfg.checkpoint_every == 0 or learner.step == train_cfg.steps) \
                and learner.consecutive_bad_steps == 0
            if saved:
                save_training_state(learner, run_dir, metadata)
            try:
                for hook in hooks:
                    hook(learner)
            except StopTraining as stop:
                log.info("training stopped at step %d by a hook: %s", learner.step, stop)
                if not saved and learner.consecutive_bad_steps == 0:
                    save_training_state(learner, run_dir, metadata)
                break
    finally:
        bar.close()
        reporter.close()
    return learner
