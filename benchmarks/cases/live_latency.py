"""Live mode: capture-to-display latency per frame and the share of camera frames dropped (random weights: speed
does not depend on training).

``live_latency``: a 3 s synthetic driver at 25 fps (256 px, a person dlib tracks) played as a camera through
`talkinghead.live.run_live` (dlib tracking, One-Euro smoothing, retargeting, G, composition, H.264 file output; no
window) for a tiny-64 and a small-128 avatar. A model slower than 40 ms per frame must drop frames; the latency
stays about one frame's work because the newest frame wins.
"""

from __future__ import annotations

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
