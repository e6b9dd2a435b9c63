"""Is lip normalization better? Validation clips driven by themselves in relative mode (issue 25, item 6).

A portrait caught with its mouth open, driven in relative mode, adds the driver's mouth motion to its own opening
(`landmarks.lip_normalization`). Whether closing the mouths first helps is measured where the truth is known: each
clip is animated from ONE frame of its own (T = 1, feed-forward), the frame where its mouth is widest (at least
`metrics.mouth.MOUTH_OPEN`), and driven by a window of its own frames that does not contain that frame, as
`talkinghead animate` drives: relative mode, the window's first frame the motion reference. The window's frames are
then the truth of what the avatar should show. Per clip, with and without normalization:

* ``opening_error``: mean |mouth openness of the retargeted landmarks − the truth's| (inner-lip gap over the
  inter-ocular distance, `metrics.mouth.mouth_openness`): the geometry, before any network.
* ``l1`` (whole frame) and ``mouth_l1`` / ``mouth_ssim`` (`metrics.mouth.mouth_metrics`, the truth's mouth box) of
  the rendered frames against the truth frames.

The report gives each mean over clips, and the paired difference (normalized − not) with a 95 % interval over clips.
The stored landmarks drive the avatar as they are (no One-Euro smoothing; both settings alike).

    python -m talkinghead.evaluate.lip_normalization --checkpoint PATH --data DATASET --out FILE.json
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from talkinghead.data.index import write_json_atomic

log = logging.getLogger(__name__)

FIGURES = ("opening_error", "l1", "mouth_l1", "mouth_ssim")
"""Per-clip figures (module docstring); lower is better except ``mouth_ssim``."""
WINDOW = 48
"""Driver frames per clip (about 2 s at 25 fps)."""
GUARD = 2
"""The window keeps at least this many frames away from the source frame."""


def driving_window(num_frames: int, source: int, length: int = WINDOW) -> list[int] | None:
    """A window of ``length`` consecutive frames at least `GUARD` frames away from ``source``: the clip's first frames
    when the source lies after them, else its last frames; None when neither fits."""
    if source >= length + GUARD:
        return list(range(length))
    if source + GUARD + length <= num_frames:
        return list(range(num_frames - length, num_frames))
    return None


def measure_lip_normalization(checkpoint: str | Path, data: str | Path, seed: int = 0, window: int = WINDOW,
                              per_identity: int | None = 1, device: str = "cpu") -> dict[str, Any]:
    """Per-clip figures with and without lip normalization, their means and paired differences (module docstring)."""
    from talkinghead.data.index import load_index
    from talkinghead.evaluate.frames import load_frames
    from talkinghead.evaluate.methods import source_objects
    from talkinghead.evaluate.models import load_models
    from talkinghead.evaluate.protocol import pick_test_videos
    from talkinghead.evaluate.settings import EvaluationSettings
    from talkinghead.landmarks.retarget import Retargeter
    from talkinghead.metrics.image import l1
    from talkinghead.metrics.mouth import MOUTH_OPEN, mouth_metrics, mouth_openness

    settings = EvaluationSettings(shots=(1,), targets=1, finetune_steps=0, seed=seed, device=device, progress=False)
    (model,) = load_models(checkpoint, settings, device)
    size = model.head.config.model.image_size
    index = load_index(data)
    videos = pick_test_videos(index, None, window + GUARD + 1, seed=seed, per_identity=per_identity)
    per_video: dict[str, dict[str, Any]] = {}
    skipped: dict[str, str] = {}
    for video in videos:
        video_index = index.videos.index(video)
        stored = index.landmarks(video_index).astype(np.float32)
        openness = np.asarray(mouth_openness(stored))
        source = int(np.argmax(openness))
        frames = driving_window(len(stored), source, window)
        if openness[source] < MOUTH_OPEN or frames is None:
            skipped[video.key] = (f"widest mouth {openness[source]:.3f} < {MOUTH_OPEN}" if frames is not None
                                  else "no window away from the source frame")
            continue
        images, landmarks = load_frames(index, video_index, [source, *frames], size)
        avatar = model.avatars(source_objects(images[:1], landmarks[:1], video.key, [source]), seed)[
            model.feed_forward_label]
        truth_images, truth_landmarks = images[1:], landmarks[1:]
        figures: dict[str, Any] = {"identity": video.identity, "source_frame": source,
                                   "source_openness": float(openness[source]), "window": [frames[0], frames[-1]]}
        for name, normalize in (("plain", False), ("normalized", True)):
            driven = Retargeter(landmarks[0], truth_landmarks[0], "relative", normalize)(truth_landmarks)
            rendered = avatar.render_batch(driven)
            mouths = [mouth_metrics(out, truth, points)
                      for out, truth, points in zip(rendered, truth_images, truth_landmarks, strict=True)]
            figures[name] = {
                "opening_error": float(np.abs(np.asarray(mouth_openness(driven)) - np.asarray(
                    mouth_openness(truth_landmarks))).mean()),
                "l1": float(np.mean([l1(out, truth) for out, truth in zip(rendered, truth_images, strict=True)])),
                "mouth_l1": float(np.mean([m["mouth_l1"] for m in mouths])),
                "mouth_ssim": float(np.mean([m["mouth_ssim"] for m in mouths]))}
        per_video[video.key] = figures
        log.info("%s: source frame %d (openness %.3f): %s", video.key, source, openness[source],
                 "; ".join(f"{n} {figures['plain'][n]:.4f} -> {figures['normalized'][n]:.4f}" for n in FIGURES))
    return {"overall": summarize(per_video), "videos": per_video, "skipped": skipped,
            "settings": {"checkpoint": str(model.path), "dataset": str(index.root), "dataset_hash": index.content_hash,
                         "image_size": size, "window": window, "seed": seed, "per_identity": per_identity,
                         "personalization": model.feed_forward_label, "shots": 1, "mode": "relative"}}


def summarize(per_video: dict[str, dict[str, Any]]) -> dict[str, dict[str, float | int | None]]:
    """Per figure: the mean of each setting over clips, and the paired difference (normalized − plain) with its
    95 % interval half-width (1.96 standard errors over clips; None with fewer than 2 clips)."""
    overall: dict[str, dict[str, float | int | None]] = {}
    for name in FIGURES:
        plain = np.array([v["plain"][name] for v in per_video.values()], dtype=np.float64)
        normalized = np.array([v["normalized"][name] for v in per_video.values()], dtype=np.float64)
        difference = normalized - plain
        half = (float(1.96 * difference.std(ddof=1) / np.sqrt(len(difference))) if len(difference) > 1 else None)
        overall[name] = {"plain": float(plain.mean()) if len(plain) else None,
                         "normalized": float(normalized.mean()) if len(plain) else None,
                         "difference": float(difference.mean()) if len(plain) else None,
                         "interval": half, "better": int((difference > 0).sum() if name == "mouth_ssim"
                                                         else (difference < 0).sum()),
                         "videos": len(plain)}
    return overall


def table(result: dict) -> str:
    lines = [f"{'figure':<14} {'plain':>9} {'normalized':>11} {'difference':>11} {'± 95 %':>8}  better"]
    for name in FIGURES:
        row = result["overall"][name]
        if row["plain"] is None:
            lines.append(f"{name:<14} {'n/a':>9}")
            continue
        interval = f"{row['interval']:.4f}" if row["interval"] is not None else "n/a"
        lines.append(f"{name:<14} {row['plain']:>9.4f} {row['normalized']:>11.4f} {row['difference']:>+11.4f} "
                     f"{interval:>8}  {row['better']}/{row['videos']}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m talkinghead.evaluate.lip_normalization",
                                     description="lip normalization on and off, on clips driven by themselves")
    parser.add_argument("--checkpoint", required=True, help="an inference export (or run directory)")
    parser.add_argument("--data", required=True, help="a prepared dataset of people the model has not seen")
    parser.add_argument("--out", required=True, help="the JSON file to write")
    parser.add_argument("--window", type=int, default=WINDOW, help=f"driver frames per clip (default {WINDOW})")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--per-identity", type=int, default=1, help="at most N clips of one person (default 1)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    result = measure_lip_normalization(args.checkpoint, args.data, args.seed, args.window, args.per_identity,
                                       args.device)
    write_json_atomic(Path(args.out), result)
    print(table(result))
    print(f"{len(result['videos'])} clips ({len(result['skipped'])} skipped); written to {args.out}")


if __name__ == "__main__":
    main()
