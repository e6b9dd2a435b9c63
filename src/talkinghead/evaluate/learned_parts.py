"""How much the warp generator's learned parts act on real test clips (issue 24 item 10), for the model card.

The warp family starts from the mesh warp of the nearest source and learns corrections (residual flow, source mix,
blend mask, AdaIN synthesis; `models.warp_generator`). Whether those corrections do anything once trained is a
question a quality table cannot answer: a model that stays at its mesh-warp start scores like the mesh warp. So
this module runs the generator's ``render`` on the frames ``talkinghead evaluate`` would score and measures, per
test video and over videos:

* ``residual_flow_mean_px`` / ``residual_flow_max_px``: |ΔF_k| over frames, the N sources each frame is rendered
  from and pixels, in pixels at the model's resolution. ΔF is in grid_sample units (align_corners=False:
  x_norm = (2x + 1) / W − 1), so one unit is W / 2 pixels along x and H / 2 along y:
  |ΔF|_px = hypot(ΔF_x · W / 2, ΔF_y · H / 2). ``residual_flow_weighted_px``: the mean over pixels of
  Σ_k w_k |ΔF_k|_px, the flow that moves the pixels the mix actually keeps.
* ``synthesis_share``: the mean of 1 − mask, the share of the output the synthesis branch supplies.
* ``gate_mean``: the mean gate (1: the nearest source alone; below 1: the learned softmax mix of the sources).
* ``output_vs_mixed_warp_grey``: mean |output − mixed warp| in grey levels (0..255) from the float images
  (clamped to [-1, 1], times 127.5): what the blend with the synthesis branch changes.
* ``output_vs_mesh_warp_grey``: mean |output − mesh warp of the nearest source| in grey levels between the uint8
  frames a viewer sees (the avatar's rendered frame and `metrics.baselines.mesh_warp`, the evaluation's baseline).
* ``psi_swap_grey``: mean |output(ψ) − output(ψ_other)| in grey levels from the float images, ψ_other being the
  feed-forward ψ̂ of another test person (the next test video of another identity, `protocol.assign_drivers`),
  with the same sources and landmarks: how much the person-specific AdaIN coefficients matter.
  ``psi_swap_mouth_grey``: the same over the mouth region only (`metrics.mouth.mouth_box` of each target's
  landmarks), where synthesis should supply the pixels of a mouth-open target (issue 25: >= 5 grey levels on the
  mouth-open split). ``psi_swap_synthesis_grey``: the same weighted by the synthesis share of each pixel,
  Σ (1 − mask)·|Δ| / Σ (1 − mask): the change where the synthesis supplies the output (with
  ``model.synthesis_mask=prior``, the driver's inner mouth that no source shows); None when nothing is synthesized.
* ``embedding`` (over videos, not per video): does the embedder tell the people apart? Each video's ê is computed
  twice from disjoint frames, once from its T sources (the avatar's ê, Eq. 7) and once from its target frames.
  ``relative_spread``: the mean distance between two people's source ê, over the mean norm of ê (the shipped
  embedder: 7 %). ``identification``: the share of videos whose target-frame ê is nearest (cosine) to their own
  source ê among all videos' (chance: 1 / videos). ``psi_relative_spread``: the same spread for ψ̂ = P ê, measured
  from the identity AdaIN's coefficients' mean (the part that is not common to everyone).
* ``auc_projection`` / ``auc_lip`` (over all frames of all videos, not per video): the discriminators' AUC between
  the real target frames and the avatar's renderings of them (`evaluate.critics`): is the adversarial term alive?

``--split mouth-open`` measures on the mouth-open split's frames (targets with the mouth open, sources closed).

Videos and frames are the ones ``talkinghead evaluate --shots T --targets M`` scores on the random split
(`run.plan` with `EvaluationSettings` defaults: the temporal window taken out, the same seed, the same identity
check), and ψ̂ = P ê is the feed-forward personalization from the T source frames (`EvaluatedModel.avatars`'s
ours-FT-init / ours-FF row). Every frame is rendered with exactly the avatar's inputs (`Avatar._generate`: the
landmark image, ψ expanded per frame, `Avatar.warp_sources`); ``max_difference_from_avatar_grey`` records, per
video, the largest difference between this output and ``avatar.render_batch`` (the evaluation's frames).

    python -m talkinghead.evaluate.learned_parts --checkpoint PATH --data DATASET --out FILE.json [--shots 8]
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from talkinghead.data.index import write_json_atomic

log = logging.getLogger(__name__)

FIGURES = ("residual_flow_mean_px", "residual_flow_max_px", "residual_flow_weighted_px", "synthesis_share",
           "gate_mean", "output_vs_mixed_warp_grey", "output_vs_mesh_warp_grey", "psi_swap_grey",
           "psi_swap_mouth_grey", "psi_swap_synthesis_grey")
"""The per-video figures, in table order (module docstring)."""
BATCH_SIZE = 16
"""Frames per generator call, as `evaluate.methods.render_batch` renders them."""


class NoWarpParts(ValueError):
    """The checkpoint's generator is the paper's pure-synthesis G: it has no flow, gate, mix or mask to measure."""


def render_parts(avatar, landmarks: np.ndarray, psi: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """The warp generator's ``render`` parts for landmarks [B, 68, 2] (the avatar's crop pixels), with exactly the
    inputs `Avatar._generate` gives it (landmark images in channels-last memory, ψ expanded to one row per frame,
    the `Avatar.warp_sources` of each frame), so the output is the avatar's frame. ``psi`` [1, P]: another ψ in
    place of the avatar's (the sources and landmarks stay the avatar's). Eager PyTorch, not the avatar's traced
    runtime: tracing keeps only the output."""
    from talkinghead.pixels import to_tensor

    if not avatar.needs_sources or not hasattr(avatar.generator, "render"):
        raise NoWarpParts(f"the {avatar.config.model.generator!r} generator has no warp parts to measure")
    landmarks = np.asarray(landmarks, np.float32)
    drawings = np.stack([avatar.landmark_image(points) for points in landmarks])
    with torch.inference_mode():
        y = to_tensor(drawings, avatar.device).contiguous(memory_format=torch.channels_last)
        chosen = avatar.psi if psi is None else psi.to(avatar.device).reshape(1, -1)
        return avatar.generator.render(y, chosen.expand(len(landmarks), -1), avatar.warp_sources(landmarks))


def flow_pixels(residual_flow: torch.Tensor) -> torch.Tensor:
    """|ΔF| in pixels: residual flow [..., H, W, 2] in grid_sample units (align_corners=False, so one unit spans
    W / 2 pixels in x and H / 2 in y) -> [..., H, W]."""
    height, width = residual_flow.shape[-3], residual_flow.shape[-2]
    return torch.hypot(residual_flow[..., 0] * (width / 2), residual_flow[..., 1] * (height / 2))


def grey_levels(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] images -> float grey levels 0..255 (clamped as `pixels.to_uint8` clamps, not rounded)."""
    return (images.float().clamp(-1, 1) + 1) * 127.5


def _mouth_sum(images: torch.Tensor, landmarks: np.ndarray) -> tuple[float, int]:
    """(Σ over the mouth regions of [B, H, W] float values, pixels counted): each frame's own `mouth_box`."""
    from talkinghead.metrics.mouth import crop, mouth_box

    values = images.cpu().numpy()
    total, count = 0.0, 0
    for value, points in zip(values, landmarks, strict=True):
        region = crop(value, mouth_box(points, value.shape[:2]))
        total += float(region.sum())
        count += region.size
    return total, count


def video_figures(avatar, landmarks: np.ndarray, source_images: np.ndarray, source_landmarks: np.ndarray,
                  other_psi: torch.Tensor | None) -> tuple[dict[str, float | None], np.ndarray]:
    """The figures (`FIGURES`) of one test video: its avatar rendering the target ``landmarks`` [M, 68, 2];
    ``source_images`` uint8 [T, S, S, 3] and ``source_landmarks`` [T, 68, 2] for the mesh-warp baseline;
    ``other_psi``: another person's ψ̂ (None: no ψ swap, the figure is None). Also returns the avatar's frames,
    uint8 [M, S, S, 3] (what the discriminators score)."""
    from talkinghead.metrics.baselines import mesh_warp
    from talkinghead.pixels import to_uint8

    sums = {name: 0.0 for name in FIGURES if name != "residual_flow_max_px"}
    flow_max, pixels, flow_values, largest, mouth_pixels, synthesized = 0.0, 0, 0, 0, 0, 0.0
    frames = []
    for start in range(0, len(landmarks), BATCH_SIZE):
        chunk = np.asarray(landmarks[start:start + BATCH_SIZE], np.float32)
        parts = render_parts(avatar, chunk)
        flow = flow_pixels(parts["residual_flow"].float())  # [B, K, H, W]
        frame = to_uint8(parts["output"])  # what the avatar shows
        rendered = avatar.render_batch(chunk)
        frames.append(rendered)
        largest = max(largest, int(np.abs(frame.astype(np.int16) - rendered.astype(np.int16)).max()))
        meshes = np.stack([mesh_warp(source_images, source_landmarks, t) for t in chunk])
        output = grey_levels(parts["output"])
        count = parts["mask"].numel()  # B x H x W
        sums["residual_flow_mean_px"] += float(flow.sum())
        sums["residual_flow_weighted_px"] += float((parts["weights"][:, :, 0].float() * flow).sum())
        sums["synthesis_share"] += float((1 - parts["mask"].float()).sum())
        sums["gate_mean"] += float(parts["gate"].float().sum())
        sums["output_vs_mixed_warp_grey"] += float((output - grey_levels(parts["mixed_warp"])).abs().sum()) / 3
        sums["output_vs_mesh_warp_grey"] += float(np.abs(frame.astype(np.float64) - meshes).sum()) / 3
        if other_psi is not None:
            swapped = grey_levels(render_parts(avatar, chunk, other_psi)["output"])
            sums["psi_swap_grey"] += float((output - swapped).abs().sum()) / 3
            total, in_mouth = _mouth_sum((output - swapped).abs().mean(1), chunk)  # [B, H, W], grey levels
            sums["psi_swap_mouth_grey"] += total
            mouth_pixels += in_mouth
            share = 1 - parts["mask"].float()[:, 0]  # [B, H, W], the synthesis branch's share of each pixel
            sums["psi_swap_synthesis_grey"] += float((share * (output - swapped).abs().mean(1)).sum())
            synthesized += float(share.sum())
        flow_max = max(flow_max, float(flow.max()))
        pixels += count
        flow_values += flow.numel()
    figures: dict[str, float | None] = {name: value / pixels for name, value in sums.items()}
    figures["psi_swap_mouth_grey"] = sums["psi_swap_mouth_grey"] / max(mouth_pixels, 1)
    figures["psi_swap_synthesis_grey"] = sums["psi_swap_synthesis_grey"] / synthesized if synthesized > 0 else None
    figures["residual_flow_mean_px"] = sums["residual_flow_mean_px"] / flow_values
    figures["residual_flow_max_px"] = flow_max
    if other_psi is None:
        figures["psi_swap_grey"] = figures["psi_swap_mouth_grey"] = figures["psi_swap_synthesis_grey"] = None
    figures["max_difference_from_avatar_grey"] = largest
    return {name: figures[name] for name in (*FIGURES, "max_difference_from_avatar_grey")}, np.concatenate(frames)


def summarize(per_video: dict[str, dict[str, Any]]) -> dict[str, dict[str, float | None]]:
    """Per figure over videos: ``mean`` (every video counts once), ``min`` and ``max`` (the range), ``videos``."""
    overall: dict[str, dict[str, float | None]] = {}
    for name in FIGURES:
        values = [v[name] for v in per_video.values() if v.get(name) is not None]
        overall[name] = {"mean": float(np.mean(values)) if values else None,
                         "min": float(np.min(values)) if values else None,
                         "max": float(np.max(values)) if values else None, "videos": len(values)}
    return overall


def measure_learned_parts(checkpoint: str | Path, data: str | Path, shots: int = 8, targets: int = 16, seed: int = 0,
                          videos: int | None = None, per_identity: int | None = 1,
                          device: str = "cpu", split: str = "random",
                          overrides: Sequence[str] = ()) -> dict[str, Any]:
    """How much a warp-family checkpoint's learned parts act on the test videos of ``data`` (module docstring).

    Videos and frames are those of ``talkinghead evaluate --shots {shots} --targets {targets} --seed {seed}
    [--videos N] [--per-identity N]`` (random split, the default temporal window left out), personalized
    feed-forward from the T = ``shots`` source frames. Returns ``{"overall": {figure: {mean, min, max, videos}},
    "videos": {key: {figure: value, identity, other_psi_from}}, "settings": ..., "units": ...}``. A checkpoint of
    the paper's family raises `NoWarpParts` (it has no flow, mix or mask)."""
    from talkinghead.data.index import load_index
    from talkinghead.evaluate.critics import Critics, auc
    from talkinghead.evaluate.frames import load_frames
    from talkinghead.evaluate.methods import source_objects
    from talkinghead.evaluate.models import load_models
    from talkinghead.evaluate.protocol import assign_drivers
    from talkinghead.evaluate.run import plan
    from talkinghead.evaluate.settings import EvaluationSettings

    settings = EvaluationSettings(shots=(shots,), targets=targets, finetune_steps=0, videos=videos,
                                  per_identity=per_identity, seed=seed, device=device, progress=False, split=split,
                                  finetune_overrides=tuple(overrides))
    (model,) = load_models(checkpoint, settings, device)
    config = model.head.config.model
    if not getattr(model.head.generator, "needs_sources", False):
        raise NoWarpParts(f"{model.path} is a {config.generator!r}-family checkpoint (preset "
                          f"{model.head.config.preset}): the paper's generator synthesizes every pixel and has no "
                          "residual flow, gate, source mix or blend mask; measure a warp-family export "
                          "(warp-tiny, warp-128, warp-256)")
    index = load_index(data)
    splits, identity_check = plan(index, [model], settings)
    size = config.image_size
    inputs, avatars = {}, {}
    for key, split in splits.items():  # ψ̂ of every video first: each is another video's ψ_other
        sources = split.source_frames[shots]
        images, landmarks = load_frames(index, split.video_index, [*sources, *split.target_frames], size)
        inputs[key] = (images[:shots], landmarks[:shots], landmarks[shots:], images[shots:])
        avatars[key] = model.avatars(source_objects(images[:shots], landmarks[:shots], key, sources), seed)[
            model.feed_forward_label]
    others = assign_drivers([index.videos[split.video_index] for split in splits.values()])
    per_video: dict[str, dict[str, Any]] = {}
    critics = Critics.load(model.head, model.path)
    scores: dict[str, dict[str, list[np.ndarray]]] = {}
    for key, split in splits.items():
        other = others.get(key)
        source_images, source_landmarks, target_landmarks, target_images = inputs[key]
        figures, rendered = video_figures(avatars[key], target_landmarks, source_images, source_landmarks,
                                          avatars[other].psi if other is not None else None)
        per_video[key] = {"identity": split.identity, "other_psi_from": other, **figures}
        for kind, images in (("real", target_images), ("generated", rendered)):
            for critic, values in critics.scores(images, target_landmarks, source_images, source_landmarks).items():
                scores.setdefault(critic, {"real": [], "generated": []})[kind].append(values)
        log.info("%s: %s", key, ", ".join(f"{n} {figures[n]:.4g}" for n in FIGURES if figures[n] is not None))
    overall: dict[str, Any] = summarize(per_video)
    overall["embedding"] = embedding_identity(model.head, inputs, splits)
    for critic, kinds in scores.items():
        real, fake = np.concatenate(kinds["real"]), np.concatenate(kinds["generated"])
        overall[f"auc_{critic}"] = {"auc": auc(real, fake), "real_mean": float(real.mean()),
                                    "generated_mean": float(fake.mean()), "frames": int(real.size)}
    return {"overall": overall, "videos": per_video,
            "settings": {"checkpoint": str(model.path), "dataset": str(index.root), "dataset_hash": index.content_hash,
                         "preset": model.head.config.preset, "image_size": size, "shots": shots, "targets": targets,
                         "seed": seed, "videos": len(splits), "per_identity": per_identity,
                         "inference_sources": config.inference_sources, "personalization": model.feed_forward_label,
                         "split": settings.split, "temporal_window": settings.temporal_window,
                         "overrides": list(overrides), "identity_check": identity_check},
            "units": {"residual_flow_*_px": f"pixels at {size} px: hypot(dx * W/2, dy * H/2) of the grid_sample "
                                            "(align_corners=False) residual flow",
                      "synthesis_share": "mean of 1 - mask", "gate_mean": "mean gate",
                      "*_grey": "mean absolute difference in grey levels 0..255 over pixels and channels "
                                "(output_vs_mesh_warp_grey between uint8 frames, the others from float images)"}}


def embedding_identity(head, inputs: dict[str, tuple], splits: dict[str, Any]) -> dict[str, float | int]:
    """How well ê names the person (module docstring, ``embedding``). ``inputs[key]``: (source images, source
    landmarks, target landmarks, target images) as uint8 crops and points; the target frames give the second ê."""
    from talkinghead.evaluate.methods import source_objects

    keys = list(inputs)
    from_sources, from_targets = [], []
    with torch.no_grad():
        for key in keys:
            source_images, source_landmarks, target_landmarks, target_images = inputs[key]
            for images, points, bank in ((source_images, source_landmarks, from_sources),
                                         (target_images, target_landmarks, from_targets)):
                frames, drawings = head._tensors(source_objects(images, points, key, range(len(images))))
                bank.append(head.embedder(frames, drawings).mean(0).float().cpu())  # ê, Eq. 7: [N]
        sources, targets = torch.stack(from_sources), torch.stack(from_targets)  # [V, N]
        psi = head.generator.project(sources.to(next(head.generator.parameters()).device)).float().cpu()
    people = [splits[key].identity for key in keys]
    different = torch.tensor([[a != b for b in people] for a in people])

    def spread(vectors: torch.Tensor, centre: torch.Tensor) -> float:
        distances = torch.cdist(vectors, vectors)[different]
        return float(distances.mean() / (vectors - centre).norm(dim=1).mean()) if distances.numel() else float("nan")

    cosine = torch.nn.functional.normalize(targets, dim=1) @ torch.nn.functional.normalize(sources, dim=1).T
    nearest = cosine.argmax(dim=1)
    identified = [people[int(n)] == people[i] for i, n in enumerate(nearest)]
    identity_psi = head.generator._identity_coefficients().float()  # the warp family's identity AdaIN
    return {"relative_spread": spread(sources, torch.zeros(sources.shape[1])),
            "identification": float(np.mean(identified)), "chance": 1.0 / len(keys), "videos": len(keys),
            "psi_relative_spread": spread(psi, identity_psi)}


def table(result: dict) -> str:
    """A short text table: each figure's mean over videos and its range."""
    overall = result["overall"]
    lines = [f"{'figure':<28} {'mean':>10} {'min':>10} {'max':>10}  videos"]
    for name in FIGURES:
        row = overall[name]
        if row["mean"] is None:
            lines.append(f"{name:<28} {'n/a':>10} {'':>10} {'':>10}  0")
            continue
        lines.append(f"{name:<28} {row['mean']:>10.4f} {row['min']:>10.4f} {row['max']:>10.4f}  {row['videos']}")
    embedding = overall.get("embedding")
    if embedding:
        lines.append(f"{'embedding relative spread':<28} {embedding['relative_spread']:>10.4f}  (psi "
                     f"{embedding['psi_relative_spread']:.4f}); identification {embedding['identification']:.2f} "
                     f"(chance {embedding['chance']:.2f}, {embedding['videos']} videos)")
    for name in sorted(k for k in overall if k.startswith("auc_")):
        row = overall[name]
        lines.append(f"{name:<28} {row['auc']:>10.4f}  (real {row['real_mean']:.3f}, generated "
                     f"{row['generated_mean']:.3f}, {row['frames']} frames each)")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m talkinghead.evaluate.learned_parts",
                                     description="how much a warp-family model's learned parts act on test clips")
    parser.add_argument("--checkpoint", required=True, help="a warp-family inference export (or run directory)")
    parser.add_argument("--data", required=True, help="a prepared dataset of unseen people")
    parser.add_argument("--out", required=True, help="the JSON file to write")
    parser.add_argument("--shots", type=int, default=8, help="T source frames per video (default 8)")
    parser.add_argument("--targets", type=int, default=16, help="target frames per video (default 16)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--videos", type=int, default=None, help="test videos (default: all eligible)")
    parser.add_argument("--per-identity", type=int, default=1, help="at most N videos of one person (default 1)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--split", default="random", choices=["random", "mouth-open"],
                        help="the frames of evaluate's random split (default) or its mouth-open split")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="model.FIELD=VALUE",
                        help="how the warp generator is run (config.INFERENCE_MODEL_FIELDS), e.g. "
                             "model.source_blend=smooth")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    result = measure_learned_parts(args.checkpoint, args.data, args.shots, args.targets, args.seed, args.videos,
                                   args.per_identity, args.device, args.split, args.overrides)
    write_json_atomic(Path(args.out), result)
    print(table(result))
    print(f"{result['settings']['videos']} videos; written to {args.out}")


if __name__ == "__main__":
    main()
