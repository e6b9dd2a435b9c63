"""Live mode: capture-to-display latency per frame and the share of camera frames dropped (random weights: speed
does not depend on training).

``live_latency``: a 3 s synthetic driver at 25 fps (256 px, a person dlib tracks) played as a camera through
`talkinghead.live.run_live` (dlib tracking, One-Euro smoothing, retargeting, G, composition, H.264 file output; no
window) for a tiny-64 and a small-128 avatar. A model slower than 40 ms per frame must drop frames; the latency
stays about one frame's work because the newest frame wins.

`real_clips` and `live_on_clips` play the shared real talking-head clips at 25 fps (../shared/data/videos, read in
place, never copied) as cameras, one live run per clip, pooled; ``realtime`` reports them beside the synthetic
driver. A real clip costs more than the synthetic one: dlib re-detects a moving real face more often, and real
faces turn and blink.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def _setup(folder: Path, seconds: float = 3.0, fps: float = 25.0) -> tuple[Path, np.ndarray]:
    """(driver video path, source portrait)."""
    from talkinghead.config import DataConfig
    from talkinghead.data.prepare import crop_clip
    from talkinghead.data.synthetic import SyntheticVideo
    from talkinghead.video import VideoWriter

    data = DataConfig()
    frames, points, _ = SyntheticVideo(0, 7, int(seconds * fps)).render(256)
    cropped, _, _ = crop_clip(frames, points, 256, fps, data.crop_scale, data.crop_lift)
    driver = folder / "driver.mp4"
    with VideoWriter(driver, fps=fps) as writer:
        for frame in cropped:
            writer.write(frame)
    portrait, _, _ = SyntheticVideo(3, 1, 1).render(256)
    return driver, portrait[0]


def _avatar(name: str, portrait: np.ndarray):
    from talkinghead.config import preset
    from talkinghead.inference import TalkingHead
    from talkinghead.models import Discriminator, Embedder, Generator

    config = preset(name)
    torch.manual_seed(0)
    head = TalkingHead(Embedder(config.model), Generator(config.model), Discriminator(config.model, 1), config)
    return head.personalize([portrait])


def case_live_latency() -> dict:
    from talkinghead.live import VideoFileSource, run_live

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # on 2 shared cores, 2 OpenMP threads can spin-wait behind another process
    result: dict = {"driver": "3 s synthetic, 25 fps, 256 px", "threads": 1}
    with tempfile.TemporaryDirectory() as folder:
        driver, portrait = _setup(Path(folder))
        for name in ("tiny-64", "small-128"):
            avatar = _avatar(name, portrait)
            landmarks = avatar.source_landmarks[0]
            avatar.render(landmarks)  # warm-up
            start = time.perf_counter()
            for _ in range(5):
                avatar.render(landmarks)
            generator_ms = (time.perf_counter() - start) / 5 * 1000
            stats = run_live(avatar, VideoFileSource(driver), output=Path(folder) / f"live-{name}.mp4")
            result[name] = {**stats.summary(), "generator_ms": round(generator_ms, 2)}
    torch.set_num_threads(threads)
    return result


SHARED_VIDEOS = Path(os.environ.get("TALKINGHEAD_SHARED_DATA", Path(__file__).resolve().parents[2].parent
                                    / "shared" / "data")) / "videos"
"""The shared development clips (outside the repository; research media, read in place)."""
CLIP_FPS = 25.0


def real_clips(videos: Path = SHARED_VIDEOS, fps: float = CLIP_FPS) -> list[Path]:
    """Every clip at ``fps`` at the top of ``videos`` and in its VoxCeleb2 tree (talking heads, one person each),
    sorted; none when the folder is absent. Chosen by their frame rate, not by name, so that no clip is left out
    for how it fares."""
    from talkinghead.video import VideoReader

    if not videos.is_dir():
        return []
    candidates = sorted([*videos.glob("*.mp4"), *videos.glob("*.mov"), *(videos / "voxceleb2").rglob("*.mp4")])
    return [path for path in candidates if abs(VideoReader(path).fps - fps) < 0.01]


def live_on_clips(avatar, clips: list[Path], folder: Path, size: int | None = None) -> dict:
    """``run_live`` with each clip as a camera (written to a file, no window), each a fresh run as a new camera
    session would be; the figures pooled over every clip's frames, and each clip's own."""
    from talkinghead.live import LatencyHistogram, VideoFileSource, run_live

    pooled = LatencyHistogram()
    delivered = rendered = dropped = 0
    seconds = 0.0
    per_clip = {}
    for clip in clips:
        stats = run_live(avatar, VideoFileSource(clip), output=folder / "live-clip.mp4", size=size)
        pooled.merge(stats.latency)
        delivered, rendered, dropped = delivered + stats.produced, rendered + stats.rendered, dropped + stats.dropped
        seconds += stats.seconds
        summary = stats.summary()
        name = str(clip.relative_to(SHARED_VIDEOS)) if clip.is_relative_to(SHARED_VIDEOS) else clip.name
        per_clip[name] = {
            "frames": stats.produced, "dropped_percent": round(100 * stats.drop_rate, 1),
            "latency_ms_median": summary["latency_ms_median"], "warm_up_s": summary["warm_up_seconds"]}
        (folder / "live-clip.mp4").unlink(missing_ok=True)
    return {"clips": len(clips), "frames_delivered": delivered, "frames_rendered": rendered,
            "fps": round(rendered / seconds, 2) if seconds else 0.0,
            "dropped_percent": round(100 * dropped / delivered, 1) if delivered else None,
            "latency_ms_median": round(pooled.quantile(0.5), 2), "latency_ms_p95": round(pooled.quantile(0.95), 2),
            "latency_ms_max": round(pooled.max_ms, 2) if pooled.count else None,
            "clips_over_5_percent_dropped": sum(v["dropped_percent"] > 5 for v in per_clip.values()),
            "per_clip": per_clip}
