"""Fine-tuning pairs for a generator that needs source frames (the warp family, issue 15 item 5).

The paper's G′ renders a target frame from its landmark image alone; the warp-guided G′ also needs source
frames of the person to warp. From the T frames a user gives, fine-tuning builds (target, sources) pairs as
episode batches (the keys of `talkinghead.data.episodes`, batched), so `training.steps.render` and
`WarpSources.from_batch` work unchanged:

* T > 1 (`SourcePairs`): each training frame is a target, its sources are the OTHER training frames, and only
  the N nearest by `normalized_landmark_distance` (what inference keeps, ``model.inference_sources``), so a
  step costs the same for T = 8 or 32 and the generator learns in the conditions it will animate in. A
  held-out frame (early stopping) is rendered from its N nearest training frames the same way. The target is
  never among its own sources.
* T = 1 (`known_warp_pair`): a single photo has no second pose. The source is the frame moved by a known random
  warp (a similarity about the face centre: rotation ±10°, scale ±8%, shift ±5% of the frame; plus landmark
  jitter of 2% of the face's RMS radius), applied through the landmark mesh (`sampling_grid` + `warp_image`),
  so the source's landmarks are exactly the moved points; the target is the original frame with its own
  landmarks. The known warp gives exact supervision for the residual flow, the confidences and the mask, while
  the synthesis branch and ψ′ adapt to the person's colours. Each step renders ``finetune.batch_size`` fresh
  warps (deterministic for a seed): lower-variance gradients than one pair, the cost of a T = 8 step, and the
  network cannot memorise one pair. With K = 1 source the gate has nothing to choose and does not train.

Landmark images are drawn with `talkinghead.landmarks.drawing.landmark_image`, the function the episodes and
inference draw with (pass the same ``line_width``). Tensors stay on the frames' device; grids and distances
are computed in numpy (the mesh lives in `landmarks/`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from talkinghead.config import ModelConfig
from talkinghead.landmarks.drawing import landmark_image
from talkinghead.landmarks.mesh import normalized_landmark_distance, sampling_grid, warp_image
from talkinghead.landmarks.mouth_region import mouth_source_weights
from talkinghead.landmarks.synthesis_prior import synthesis_prior
from talkinghead.models.source_choice import choose_sources
from talkinghead.pixels import to_tensor, to_uint8

Batch = dict[str, torch.Tensor]

MAX_ROTATION_DEGREES = 10.0
MAX_SCALE_CHANGE = 0.08
MAX_SHIFT = 0.05
"""Of the frame's side."""
JITTER = 0.02
"""Standard deviation of the per-landmark jitter, as a fraction of the face's RMS radius."""


def check_landmarks(landmarks: torch.Tensor | np.ndarray, frames: torch.Tensor) -> np.ndarray:
    """The T frames' landmarks as float32 numpy [T, 68, 2]; ValueError unless they fit frames [T, 3, H, W]."""
    points = np.asarray(landmarks.detach().cpu() if isinstance(landmarks, torch.Tensor) else landmarks,
                        dtype=np.float32)
    if points.shape != (frames.shape[0], 68, 2):
        raise ValueError(f"landmarks must be [T, 68, 2] pixel coordinates of the {frames.shape[0]} source frames, "
                         f"got {tuple(points.shape)}")
    if not np.isfinite(points).all():
        bad = sorted({int(t) for t in np.nonzero(~np.isfinite(points))[0]})
        raise ValueError(f"landmarks of source frame(s) {bad} are not finite; track those frames again or drop them")
    return points


def nearest_sources(landmarks: np.ndarray, targets: list[int], pool: list[int], count: int,
                    rule: str = "nearest", power: float = 4.0) -> tuple[list[list[int]], np.ndarray]:
    """For each target frame, the ``count`` frames of ``pool`` nearest to it (normalized landmark distance),
    nearest first, never the target itself, and their blend weights by ``rule`` (`models.source_choice`, as
    inference chooses them). ``landmarks`` [T, 68, 2] -> (frames [B][count], weights float32 [B, count])."""
    chosen, weights = [], []
    for target in targets:
        others = [t for t in pool if t != target]
        if not others:
            raise ValueError(f"source frame {target} has no other frame to be rendered from")
        distances = normalized_landmark_distance(landmarks[others], landmarks[target])
        order, shares = choose_sources(distances, count, rule, power)  # type: ignore[arg-type]
        chosen.append([others[i] for i in order])
        weights.append(shares)
    return chosen, np.stack(weights)


def with_rule(batch: Batch, model: ModelConfig, weights: np.ndarray) -> Batch:
    """``batch`` (the `pair_batch` keys) with what the warp generator's config asks of its sources: the rule's
    ``source_weights`` [B, K] (unless the rule is the nearest alone; per pixel [B, K, H, W] with
    ``model.mouth_blend_power``, as inference mixes them) and the ``synthesis_prior`` [B, 1, H, W] (its parts
    [B, 3, H, W] with ``model.prior_input``)."""
    device = batch["source_grids"].device
    shares = torch.from_numpy(np.asarray(weights, np.float32))
    if model.source_blend != "nearest":
        batch["source_weights"] = shares.to(device)
    if model.mouth_blend_power > 0:
        per_pixel, shares = mouth_source_weights(batch["target_landmarks"].cpu().numpy(),
                                                 batch["source_landmarks"].cpu().numpy(), shares.numpy(),
                                                 model.mouth_blend_power, batch["source_grids"].shape[2])
        batch["source_weights"] = per_pixel.to(device)
    if model.synthesis_prior:
        batch["synthesis_prior"] = synthesis_prior(batch["target_landmarks"].cpu(), batch["source_landmarks"].cpu(),
                                                   batch["source_grids"].cpu(), shares,
                                                   model.stretch_limit, model.lid_prior,
                                                   parts=model.prior_input).to(device)
    return batch


def pair_batch(frames: torch.Tensor, landmark_images: torch.Tensor, landmarks: np.ndarray, targets: list[int],
               sources: list[list[int]]) -> Batch:
    """The episode keys for targets [B] rendered from ``sources`` [B][K] (frame indices; K equal for all):
    source_images / source_landmark_images [B, K, 3, H, W], source_grids [B, K, H, W, 2] (mesh grid from the
    target to each source), source_distances [B, K], source_landmarks [B, K, 68, 2], target_landmarks [B, 68, 2],
    source_frames [B, K] and target_frame [B] (long: which frames went where)."""
    size = tuple(frames.shape[-2:])
    index = torch.tensor(sources, dtype=torch.long)  # [B, K]
    grids = np.stack([np.stack([sampling_grid(landmarks[s], landmarks[t], size) for s in row])
                      for t, row in zip(targets, sources, strict=True)])
    distances = np.stack([normalized_landmark_distance(landmarks[row], landmarks[t])
                          for t, row in zip(targets, sources, strict=True)])
    device = frames.device
    return {
        "source_images": frames[index.to(device)],
        "source_landmark_images": landmark_images[index.to(device)],
        "source_grids": torch.from_numpy(grids).to(device),
        "source_distances": torch.from_numpy(distances.astype(np.float32)).to(device),
        "source_landmarks": torch.from_numpy(landmarks[index.numpy()]).to(device),
        "target_landmarks": torch.from_numpy(landmarks[targets]).to(device),
        "source_frames": index.to(device),
        "target_frame": torch.tensor(targets, dtype=torch.long, device=device),
    }


@dataclass
class SourcePairs:
    """T > 1: each target frame with its ``count`` nearest other frames of ``pool`` as sources, built once."""

    batch: Batch
    targets: list[int]

    @classmethod
    def build(cls, frames: torch.Tensor, landmark_images: torch.Tensor, landmarks: np.ndarray, targets: list[int],
              pool: list[int], count: int, model: ModelConfig | None = None) -> SourcePairs:
        """``model``: the warp generator's config, whose source rule and prior the pairs follow (None: the
        nearest alone, no prior)."""
        model = model or ModelConfig()
        sources, weights = nearest_sources(landmarks, targets, pool, count, model.source_blend,
                                           model.source_blend_power)
        batch = with_rule(pair_batch(frames, landmark_images, landmarks, targets, sources), model, weights)
        return cls(batch, list(targets))

    def select(self, frames: list[int]) -> Batch:
        """The rows of these target frames."""
        rows = torch.tensor([self.targets.index(f) for f in frames], dtype=torch.long)
        return {key: value[rows.to(value.device)] for key, value in self.batch.items()}


def known_warp(landmarks: np.ndarray, size: int | tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """The known random warp of T = 1 (module docstring): a face's landmarks [68, 2] -> where the warp moves them,
    float32 [68, 2]. A similarity about the landmarks' centre, then Gaussian jitter per point."""
    height, width = (size, size) if isinstance(size, int) else size
    points = np.asarray(landmarks, np.float64)
    centre = points.mean(0)
    radius = np.sqrt(((points - centre) ** 2).sum(1).mean())
    angle = np.deg2rad(rng.uniform(-MAX_ROTATION_DEGREES, MAX_ROTATION_DEGREES))
    scale = 1.0 + rng.uniform(-MAX_SCALE_CHANGE, MAX_SCALE_CHANGE)
    shift = rng.uniform(-MAX_SHIFT, MAX_SHIFT, 2) * np.array([width, height])
    rotation = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    moved = (points - centre) @ rotation.T + centre + shift
    moved += rng.normal(0.0, JITTER * radius, moved.shape)
    return moved.astype(np.float32)


def known_warp_pair(frame: torch.Tensor, landmark_image_: torch.Tensor, landmarks: np.ndarray,
                    rng: np.random.Generator, line_width: float | None = None, count: int = 1,
                    model: ModelConfig | None = None) -> Batch:
    """T = 1: ``count`` pairs from one frame [3, H, W] in [-1, 1] with its landmark image and landmarks [68, 2].

    Each source = the frame moved by a fresh `known_warp` through the mesh (its landmarks: exactly the moved
    points, drawn with ``line_width``); each target = the frame itself. Returns the `pair_batch` keys with
    B = ``count``, K = 1, plus ``target_image`` [B, 3, H, W] and ``target_landmark_image`` [B, 3, H, W]."""
    height, width = frame.shape[-2:]
    points = np.asarray(landmarks, np.float32)
    pixels = to_uint8(frame[None])[0]  # [H, W, 3]
    moved = np.stack([known_warp(points, (height, width), rng) for _ in range(count)])  # [B, 68, 2]
    # The source: the frame with its face carried by the mesh onto the moved points.
    sources = np.stack([warp_image(pixels, sampling_grid(points, m, (height, width))) for m in moved])
    drawings = np.stack([landmark_image(m, width, line_width=line_width) for m in moved])
    grids = np.stack([sampling_grid(m, points, (height, width)) for m in moved])  # target pixel -> source
    distances = np.stack([normalized_landmark_distance(m[None], points) for m in moved])  # [B, 1]
    device = frame.device
    batch = {
        "source_images": to_tensor(sources, device)[:, None],
        "source_landmark_images": to_tensor(drawings, device)[:, None],
        "source_grids": torch.from_numpy(grids)[:, None].to(device),
        "source_distances": torch.from_numpy(distances.astype(np.float32)).to(device),
        "source_landmarks": torch.from_numpy(moved)[:, None].to(device),
        "target_landmarks": torch.from_numpy(np.repeat(points[None], count, 0)).to(device),
        "target_image": frame[None].expand(count, -1, -1, -1),
        "target_landmark_image": landmark_image_[None].expand(count, -1, -1, -1),
    }
    return with_rule(batch, model or ModelConfig(), np.ones((count, 1), np.float32))
