"""Dataset building and episode loading speed (issue 3 targets).

* ``data_prepare``: `prepare_dataset` end to end (decode + landmarks + crop + write) on the shared 224x224
  VoxCeleb2 clips at 256 px, with 1 and 2 worker processes: frames/s of the whole run (process start and
  model loading included), frames/s per worker-second of pipeline work, and each stage's share of that work.
  Target: >= 100 frames/s per core.
* ``data_subsample``: a prepared dataset thinned to every 10th frame beside a full copy (`data.subsample`).
* ``data_episodes``: `EpisodeDataset` items with K = 8 sources + 1 target at 256x256 on one core (torch and
  OpenCV limited to one thread): ms per sample (mean, median, p95), and the share spent decoding JPEGs and
  drawing landmark images, timed separately in the same run. Target: <= 20 ms per sample.

Both read ``../shared/data`` (or ``$TALKINGHEAD_SHARED_DATA``); ``data_episodes`` falls back to a synthetic
dataset when it is absent. Clips are cut to ``MAX_FRAMES`` frames to keep runs short on shared machines.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from benchmarks.cases import case
from talkinghead.data.prepare import PrepareSettings, prepare_dataset, write_synthetic_dataset

REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED_DATA = Path(os.environ.get("TALKINGHEAD_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))
VOXCELEB = SHARED_DATA / "videos" / "voxceleb2"
MAX_FRAMES = 60
SIZE = 256


def _prepare_run(workers: int, output: Path) -> dict:
    report = prepare_dataset(VOXCELEB, output, PrepareSettings(image_size=SIZE, max_frames=MAX_FRAMES), workers=workers)
    work = sum(report.stage_seconds.values())
    return {
        "frames": report.frames_written,
        "videos": report.written,
        "frames_per_s_end_to_end": round(report.frames_per_second, 1),
        "frames_per_s_per_worker_second": round(report.frames_written / work, 1) if work else None,
        "stage_share": {k: round(v / work, 3) for k, v in report.stage_seconds.items()} if work else {},
    }


@case("data_prepare")
def data_prepare() -> dict:
    """Dataset building: frames/s with 1 and 2 workers on the shared VoxCeleb2 clips, share per stage."""
    if not VOXCELEB.is_dir():
        return {"skipped": f"shared data not found at {VOXCELEB}"}
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            figures = {f"workers_{n}": _prepare_run(n, Path(tmp) / f"w{n}") for n in (1, 2)}
    finally:
        cv2.setNumThreads(threads)
    figures["max_frames_per_clip"] = MAX_FRAMES
    figures["image_size"] = SIZE
    figures["target_frames_per_s_per_core"] = 100
    return figures


def _episode_dataset(tmp: Path) -> tuple[Path, str]:
    if VOXCELEB.is_dir():
        prepare_dataset(VOXCELEB, tmp, PrepareSettings(image_size=SIZE, max_frames=30), workers=2)
        return tmp, "voxceleb2 clips"
    write_synthetic_dataset(tmp, num_identities=4, videos_per_identity=1, frames_per_video=20, size=SIZE)
    return tmp, "synthetic"


@case("data_episodes")
def data_episodes() -> dict:
    """Episode loading: ms per sample for K = 8 + 1 frames at 256x256 on one core (target <= 20 ms)."""
    import torch

    from talkinghead.data.episodes import EpisodeDataset
    from talkinghead.data.index import decode_frame
    from talkinghead.landmarks.drawing import landmark_image

    torch_threads, cv2_threads = torch.get_num_threads(), cv2.getNumThreads()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            root, source = _episode_dataset(Path(tmp))
            dataset = EpisodeDataset(root, SIZE, frames_per_episode=8, seed=0)
            for item in range(len(dataset)):  # warm the file cache (a training box reads from its page cache)
                dataset[item]
            times = []
            samples = 0
            started_all = time.perf_counter()
            for epoch in range(1, 40):
                dataset.set_epoch(epoch)
                for item in range(len(dataset)):
                    started = time.perf_counter()
                    dataset[item]
                    times.append(time.perf_counter() - started)
                    samples += 1
                if time.perf_counter() - started_all > 10:
                    break
            # The two main costs alone, same frames: JPEG decoding and landmark drawing of 9 frames.
            index = dataset.index
            paths = [index.frame_path(0, t) for t in range(min(9, index.videos[0].num_frames))]
            points = index.landmarks(0)[: len(paths)]
            started = time.perf_counter()
            for _ in range(20):
                for path in paths:
                    decode_frame(path)
            decode_ms = (time.perf_counter() - started) / 20 * 1e3 * 9 / len(paths)
            started = time.perf_counter()
            for _ in range(20):
                for p in points:
                    landmark_image(p, SIZE)
            draw_ms = (time.perf_counter() - started) / 20 * 1e3 * 9 / len(paths)
    finally:
        torch.set_num_threads(torch_threads)
        cv2.setNumThreads(cv2_threads)
    times_ms = np.array(times) * 1e3
    return {
        "dataset": source,
        "samples": samples,
        "ms_per_sample_mean": round(float(times_ms.mean()), 2),
        "ms_per_sample_median": round(float(np.median(times_ms)), 2),
        "ms_per_sample_p95": round(float(np.percentile(times_ms, 95)), 2),
        "ms_decode_9_jpegs": round(decode_ms, 2),
        "ms_draw_9_landmark_images": round(draw_ms, 2),
        "target_ms_per_sample": 20,
    }


def _folder_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


@case("data_subsample")
def data_subsample() -> dict:
    """`data.subsample`: a synthetic 128-px dataset (8 clips x 120 frames) thinned to every 10th frame beside a
    full copy (every 1st) in the same run: seconds, frames written per second and bytes against the source."""
    from talkinghead.data.subsample import subsample_dataset

    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "full"
        written = write_synthetic_dataset(source, num_identities=4, videos_per_identity=2, frames_per_video=120,
                                          size=128, seed=0)
        figures: dict = {"source_frames": written["num_frames"], "source_mb": round(_folder_bytes(source) / 1e6, 2)}
        for every in (1, 10):
            out = Path(tmp) / f"every{every}"
            start = time.perf_counter()
            index = subsample_dataset(source, out, every)
            seconds = time.perf_counter() - start
            figures[f"every_{every}"] = {"frames": index["num_frames"], "seconds": round(seconds, 3),
                                         "frames_per_s": round(index["num_frames"] / seconds, 1),
                                         "mb": round(_folder_bytes(out) / 1e6, 2)}
    return figures
