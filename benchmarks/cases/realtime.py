"""Real time on a laptop CPU (issue 17): runtimes, landmarks, and the end-to-end targets, measured in one run.

    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 python benchmarks/run.py --case realtime_runtimes \\
        --case realtime_landmarks --case realtime

* ``realtime_runtimes``: each inference runtime's ms per frame (`talkinghead.runtime`: eager channels-last and
  contiguous under inference_mode, TorchScript trace + freeze, torch.compile with its compile time, ONNX Runtime)
  for the warp-128 and warp-256 generators (batch 1, N = 2 sources, untrained weights: speed does not depend on
  training), with each one's largest difference from eager.
* ``realtime_landmarks``: dlib per frame at 256 and at 720p — per-frame detection, and the tracker (detect every
  25 frames, track between) at full and reduced resolution — with each choice's AKD (mean landmark distance, pixels
  of the clip) against per-frame detection, on shared clips (../shared/data/videos, read-only).
* ``realtime``: the issue's targets beside the measured figures: warp-256 and warp-128 end to end in ``animate``
  (decode -> landmarks -> G -> encode, `write_animation`, pipelined; the sequential loop beside it), and ``live``
  (fps, median capture-to-display latency, dropped %) with a 25 fps synthetic file camera and, in the same run,
  every 25 fps real talking-head clip of ../shared/data/videos played as a camera (issue 26; skipped when the
  folder is absent), for warp-256 and the shipped model, with this machine's measured conv throughput and load.

Torch runs ``TALKINGHEAD_BENCH_THREADS`` intra-op threads (default 1: the pipeline's other stages use the second
core); the figures say how many and the machine's load.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.cases import best_and_median_ms
from benchmarks.cases.live_latency import SHARED_VIDEOS
from benchmarks.cases.live_latency import _setup as synthetic_driver

LIVE_SIZE = 256
"""The issue's live resolution (`talkinghead live --size`'s default)."""
TARGETS = {"warp-256 animate fps": 25, "live fps": 25, "live median latency ms": 60, "live dropped %": 5,
           "warp-128 animate fps": 50}


def _threads() -> int:
    return int(os.environ.get("TALKINGHEAD_BENCH_THREADS", "1"))


def case_realtime_runtimes() -> dict:
    """Each inference runtime's ms per frame for the warp-128 and warp-256 generators (batch 1, fp32)."""
    from benchmarks.cases.warp import conv_gflops, warp_inputs
    from talkinghead.runtime import RUNTIMES, available, build_runtime

    previous = torch.get_num_threads()
    torch.set_num_threads(_threads())
    result: dict = {"threads": _threads(), "repeats": 15}
    try:
        for name in ("warp-128", "warp-256"):
            generator, example = warp_inputs(name)
            eager = build_runtime(generator, "eager", example)(*example)
            figures = {}
            for kind in RUNTIMES:
                if not available(kind):
                    figures[kind] = "not installed"
                    continue
                started = time.perf_counter()
                try:
                    run = build_runtime(generator, kind, example)
                    out = run(*example)  # compile / first-call cost
                except Exception as error:  # noqa: BLE001 - a candidate that fails is a figure too
                    figures[kind] = f"failed: {type(error).__name__}: {str(error)[:120]}"
                    continue
                build_s = time.perf_counter() - started
                best, median = best_and_median_ms(lambda run=run, example=example: run(*example), 15)
                figures[kind] = {"ms_per_frame_best": round(best, 2), "ms_per_frame_median": round(median, 2),
                                 "build_and_first_call_s": round(build_s, 2),
                                 "max_abs_diff_vs_eager": float((out - eager).abs().max())}
            timed = {k: v["ms_per_frame_median"] for k, v in figures.items() if isinstance(v, dict)}
            figures["fastest_by_median"] = min(timed, key=timed.get)
            result[name] = figures
        result["conv3x3_32ch_64px_gflops_per_s"] = round(conv_gflops(), 1)
    finally:
        torch.set_num_threads(previous)
    return result


# --- landmarks -----------------------------------------------------------------------------------------------------


def _clip(path: Path, frames: int) -> list[np.ndarray]:
    from talkinghead.video import VideoReader

    out = []
    for frame in VideoReader(path):
        out.append(frame)
        if len(out) == frames:
            break
    return out


def _track(frames: list[np.ndarray], **options) -> tuple[list[np.ndarray | None], float]:
    from talkinghead.landmarks.tracking import FaceTracker

    tracker = FaceTracker(**options)
    started = time.perf_counter()
    points = [tracker(frame)[0] for frame in frames]
    return points, (time.perf_counter() - started) / len(frames) * 1e3


def _akd(points: list[np.ndarray | None], reference: list[np.ndarray | None]) -> float | None:
    pairs = [(p, r) for p, r in zip(points, reference, strict=True) if p is not None and r is not None]
    if not pairs:
        return None
    return round(float(np.mean([np.linalg.norm(p - r, axis=1).mean() for p, r in pairs])), 2)


def case_realtime_landmarks() -> dict:
    """dlib per frame at 256 and 720p: per-frame detection vs tracking (full and reduced resolution), with AKD."""
    clips = {"256": ["dagan__vox_woman_short_hair.mp4", "lia__vox_man_grey_shirt.mp4"],
             "720p": ["lp__d13_man_selfie_vertical.mp4"]}
    choices = {"256": {"track every frame, detect every 25": {}},
               "720p": {"track every frame, detect every 25": {},
                        "track at 640 px longer side": {"work_side": 640},
                        "track at 360 px longer side": {"work_side": 360}}}
    frames_per_clip = 100
    result: dict = {"frames_per_clip": frames_per_clip, "akd": "mean landmark distance to per-frame detection at "
                    "full resolution, pixels of the clip", "prepare_issue_figure_fps_per_core": 85,
                    "prepare_goal_fps_per_core": 100}
    if not SHARED_VIDEOS.is_dir():
        return {**result, "skipped": f"no shared clips at {SHARED_VIDEOS}"}
    for resolution, names in clips.items():
        figures: dict = {"clips": names}
        rows: dict[str, list] = {"per-frame detection (reference)": []}
        for choice in choices[resolution]:
            rows[choice] = []
        for name in names:
            frames = _clip(SHARED_VIDEOS / name, frames_per_clip)
            reference, ms = _track(frames, detect_every=1)
            rows["per-frame detection (reference)"].append((ms, 0.0, sum(p is not None for p in reference)))
            for choice, options in choices[resolution].items():
                points, ms = _track(frames, **options)
                rows[choice].append((ms, _akd(points, reference), sum(p is not None for p in points)))
        for choice, measured in rows.items():
            ms = float(np.mean([m[0] for m in measured]))
            akds = [m[1] for m in measured if m[1] is not None]
            figures[choice] = {"ms_per_frame": round(ms, 2), "frames_per_s": round(1e3 / ms, 1),
                               "akd_px": round(float(np.mean(akds)), 2) if akds else None,
                               "frames_with_face": sum(m[2] for m in measured)}
        result[resolution] = figures
    return result


# --- end to end ------------------------------------------------------------------------------------------------------


def shipped_run_settings() -> dict:
    """How the shipped model runs its generator (the weight-free model fields: sources per frame, source rule, mouth
    prior, flow limit), so that the untrained warp-128/256 avatars are timed as the product runs them."""
    from talkinghead.config import WEIGHT_FREE_MODEL_FIELDS
    from talkinghead.inference import TalkingHead

    model = TalkingHead.load_shipped().config.model
    return {name: getattr(model, name) for name in WEIGHT_FREE_MODEL_FIELDS}


def _avatar(name: str, settings: dict):
    from benchmarks.cases.inference import _warp_avatar

    return _warp_avatar(name, model_changes=settings)


def _animate_fps(avatar, driver: Path, output: Path, pipelined: bool) -> dict:
    """decode -> landmarks -> G -> encode frames per second through `write_animation` (pipelined), or the
    sequential loop over the same stages."""
    from talkinghead import compose
    from talkinghead.animation import FrameAnimator, write_animation
    from talkinghead.video import VideoReader, VideoWriter

    started = time.perf_counter()
    if pipelined:
        size = avatar.config.model.image_size  # the crop at the model's size, as issue 17 measured (not the picture)
        frames = write_animation(avatar, driver, output, overwrite=True, crop=True, size=size)["frames"]
    else:
        reader = VideoReader(driver)
        animator = FrameAnimator(avatar, fps=reader.fps)
        with VideoWriter(output, fps=reader.fps) as writer:
            for frame in reader:
                writer.write(compose.draw_synthetic_mark(animator(frame).image))
        frames = animator.frames
    seconds = time.perf_counter() - started
    return {"frames": frames, "fps": round(frames / seconds, 2)}


def _shipped_avatar():
    """The shipped real-face model (warp-128) personalized feed-forward on the packaged Mona Lisa: what
    ``talkinghead live --source portrait.jpg`` runs."""
    from talkinghead.inference import TalkingHead
    from talkinghead.showcase import packaged_mona_lisa

    return TalkingHead.load_shipped().personalize([packaged_mona_lisa()])


def _live_synthetic(avatar, driver: Path, folder: Path, size: int | None = None) -> dict:
    from talkinghead.live import VideoFileSource, run_live

    load = round(os.getloadavg()[0], 2)
    stats = run_live(avatar, VideoFileSource(driver), output=folder / "live.mp4", size=size).summary()
    return {"fps": stats["rendered_fps"], "latency_ms_median": stats["latency_ms_median"],
            "latency_ms_p95": stats["latency_ms_p95"], "dropped_percent": round(100 * stats["drop_rate"], 1),
            "frames_delivered": stats["frames_delivered"], "warm_up_s": stats["warm_up_seconds"],
            "load_average_1min_before": load}


def _live_real(avatar, clips: list[Path], folder: Path, size: int | None = None) -> dict:
    from benchmarks.cases.live_latency import live_on_clips

    if not clips:
        return {"skipped": f"no 25 fps clips at {SHARED_VIDEOS}"}
    load = round(os.getloadavg()[0], 2)
    return {**live_on_clips(avatar, clips, folder, size=size), "load_average_1min_before": load,
            "load_average_1min_after": round(os.getloadavg()[0], 2)}


def case_realtime() -> dict:
    """Issue 17's targets beside measured figures: warp-256/128 animate fps (decode to encode), and live (fps,
    median capture-to-display latency, dropped %) on a 25 fps synthetic file camera and, in the same run, on the
    shared real 25 fps talking-head clips (issue 26), for warp-256 and for the shipped model at 256 px; the
    machine's conv throughput and load."""
    from benchmarks.cases.live_latency import real_clips
    from benchmarks.cases.warp import conv_gflops

    previous = torch.get_num_threads()
    torch.set_num_threads(_threads())
    clips = real_clips(SHARED_VIDEOS)
    settings = shipped_run_settings()
    result: dict = {"targets": TARGETS, "threads": _threads(), "load_average_1min_at_start": round(
        os.getloadavg()[0], 2), "driver": "synthetic talking head dlib tracks, 256x256, 25 fps, 8 s (200 frames)",
        "real_clips": f"{len(clips)} real talking-head clips at 25 fps from {SHARED_VIDEOS} (each a fresh live run, "
                      "figures pooled over their frames)",
        "avatar": f"untrained (speed does not depend on training), T = 8 sources, N = "
                  f"{settings['inference_sources']} per frame, run as the shipped model runs (its weight-free model "
                  "fields) with lip normalization at its default",
        "run_settings": settings,
        "latency": "capture to display: from the frame's capture to the composed frame handed to the encoder"}
    try:
        result["conv3x3_32ch_64px_gflops_per_s"] = round(conv_gflops(), 1)
        with tempfile.TemporaryDirectory() as folder:
            driver, _ = synthetic_driver(Path(folder), seconds=8.0)
            for name in ("warp-256", "warp-128"):
                avatar = _avatar(name, settings)
                avatar.render(avatar.source_landmarks[0])  # warm-up
                figures = {"animate_pipelined": _animate_fps(avatar, driver, Path(folder) / "a.mp4", True),
                           "animate_sequential": _animate_fps(avatar, driver, Path(folder) / "s.mp4", False),
                           "live_25fps_file_camera": _live_synthetic(avatar, driver, Path(folder))}
                if name == "warp-256":
                    figures["live_real_clips_25fps"] = _live_real(avatar, clips, Path(folder))
                result[name] = figures
            shipped = _shipped_avatar()  # rendered at 256 px (`live --size`'s default) from its full-res crops
            result["shipped warp-128 live"] = {
                "size_px": LIVE_SIZE,
                "live_25fps_file_camera": _live_synthetic(shipped, driver, Path(folder), LIVE_SIZE),
                "live_real_clips_25fps": _live_real(shipped, clips, Path(folder), LIVE_SIZE)}
        live = result["warp-256"]["live_25fps_file_camera"]
        real = result["warp-256"]["live_real_clips_25fps"]
        result["measured_vs_target"] = {
            "warp-256 animate fps": [result["warp-256"]["animate_pipelined"]["fps"], TARGETS["warp-256 animate fps"]],
            "live fps": [live["fps"], TARGETS["live fps"]],
            "live median latency ms": [live["latency_ms_median"], TARGETS["live median latency ms"]],
            "live dropped %": [live["dropped_percent"], TARGETS["live dropped %"]],
            "live real clips median latency ms": [real.get("latency_ms_median"), TARGETS["live median latency ms"]],
            "live real clips dropped %": [real.get("dropped_percent"), TARGETS["live dropped %"]],
            "warp-128 animate fps": [result["warp-128"]["animate_pipelined"]["fps"], TARGETS["warp-128 animate fps"]]}
    finally:
        torch.set_num_threads(previous)
    result["load_average_1min_at_end"] = round(os.getloadavg()[0], 2)
    return result


def case_realtime_settings() -> dict:
    """warp-128 ``animate`` (decode to encode, pipelined and sequential) run the preset's way (nearest source, no
    prior) and the shipped model's way (`shipped_run_settings`), interleaved twice in one run, so that their difference
    is not the machine's drift: what issue 25's inference parts cost end to end."""
    previous = torch.get_num_threads()
    torch.set_num_threads(_threads())
    rows: dict[str, list[dict]] = {"preset": [], "shipped settings": []}
    settings = shipped_run_settings()
    try:
        with tempfile.TemporaryDirectory() as folder:
            driver, _ = synthetic_driver(Path(folder), seconds=8.0)
            from benchmarks.cases.inference import _warp_avatar

            for _ in range(2):
                for name, changes in (("preset", {}), ("shipped settings", settings)):
                    avatar = _warp_avatar("warp-128", model_changes=changes)
                    avatar.render(avatar.source_landmarks[0])  # warm-up
                    pipelined = _animate_fps(avatar, driver, Path(folder) / "a.mp4", True)["fps"]
                    sequential = _animate_fps(avatar, driver, Path(folder) / "s.mp4", False)["fps"]
                    rows[name].append({"pipelined": pipelined, "sequential": sequential})
    finally:
        torch.set_num_threads(previous)
    return {"warp-128 animate fps": rows, "settings": settings, "threads": _threads(),
            "target": TARGETS["warp-128 animate fps"], "load_average_1min": round(os.getloadavg()[0], 2)}


SOURCE_COUNTS = (2, 3, 4)
"""Sources mixed per frame (``model.inference_sources``) timed by `case_realtime_sources`."""


def case_realtime_sources() -> dict:
    """warp-256 and warp-128 ``animate`` (decode to encode, pipelined) as the shipped model runs them, with N = 2, 3
    and 4 sources mixed per frame, interleaved twice in one run: what each source added to the mix costs (the flow
    network runs once per source). Stop 30 chose the shipped model's N on validation and on this."""
    previous = torch.get_num_threads()
    torch.set_num_threads(_threads())
    settings = shipped_run_settings()
    rows: dict[str, list[float]] = {}
    try:
        with tempfile.TemporaryDirectory() as folder:
            driver, _ = synthetic_driver(Path(folder), seconds=8.0)
            from benchmarks.cases.inference import _warp_avatar

            for _ in range(2):
                for name in ("warp-256", "warp-128"):
                    for count in SOURCE_COUNTS:
                        avatar = _warp_avatar(name, model_changes={**settings, "inference_sources": count})
                        avatar.render(avatar.source_landmarks[0])  # warm-up
                        fps = _animate_fps(avatar, driver, Path(folder) / "a.mp4", True)["fps"]
                        rows.setdefault(f"{name} N={count}", []).append(fps)
    finally:
        torch.set_num_threads(previous)
    return {"animate fps (two interleaved runs)": rows, "shipped N": settings["inference_sources"],
            "settings": settings, "threads": _threads(),
            "targets": {"warp-256 animate fps": TARGETS["warp-256 animate fps"],
                        "warp-128 animate fps": TARGETS["warp-128 animate fps"]},
            "load_average_1min": round(os.getloadavg()[0], 2)}
