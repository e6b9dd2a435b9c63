"""`talkinghead prepare VIDEOS -o DATASET`: videos and images -> a dataset (format: `talkinghead.data.index`).

Inputs. ``VIDEOS`` is a folder (or one file). Every video file (``.mp4 .mov .avi .mkv .webm .flv .m4v
.mpg .mpeg``) is one video; every still image (``.jpg .jpeg .png .bmp .webp .tif .tiff .ppm .pgm``) is a
one-frame video. The video's ``key`` is its path relative to ``VIDEOS`` (posix, extension kept, so
``a.mp4`` and ``a.mov`` do not collide) and its identity is the first folder of that path, or the file's
stem when the file lies directly in ``VIDEOS``. A VoxCeleb tree ``id00017/OLguY5ofUrY/00041.mp4`` thus
gives identity ``id00017``; ``alice/talk.mp4`` gives ``alice``; ``bob.mp4`` gives ``bob``.

Per video, streaming: decode (every ``every``-th frame, at most ``max_frames``) -> 68 landmarks, detected on
some frames and tracked between them -> the one crop policy's square boxes, smoothed over time, padded at
the borders -> frames resized to ``image_size``, JPEG-encoded -> frames, ``landmarks.npy`` (crop pixels)
and ``meta.json`` (with each kept frame's head yaw, `talkinghead.landmarks.pose`) written into a temporary
folder that is renamed into ``videos/<key>`` when complete.
Frames whose face is lost are dropped (listed in ``meta.json``); frames are kept in memory for the crop
pass up to ``FRAME_BUFFER_BYTES``, longer videos are decoded a second time instead.

Never aborting: an unreadable, empty or corrupt file, a file without a face, a video shorter than
``min_frames`` after dropping frames, or any unexpected error in one video is *skipped*: a record with the
reason is written to ``.state/skipped/`` and listed in ``skipped.jsonl``; the run goes on.

Resumable and idempotent: a re-run skips videos whose folder exists and inputs skipped before (pass
``retry_skipped`` to try those again); a killed run leaves only temporary folders, removed by the next run
of the same shard. The same inputs and settings give byte-identical frames, landmarks and index. A
dataset folder remembers its settings (``.state/settings.json``); a re-run with other settings is an error.

Sharding: ``shard=(i, n)`` processes the inputs whose ``sha256(key) mod n == i`` (stable whatever other
files exist). Shards may write into the same DATASET folder at the same time (each uses its own temporary
folder); every shard rebuilds ``index.json`` from the complete video folders when it ends, so the last
shard to finish writes the full index (or run ``prepare --index-only`` afterwards).

The settings (`PrepareSettings`) are `talkinghead.data.settings`'s, shared with the synthetic-dataset writer
(`write_synthetic_dataset`, `crop_clip`: `talkinghead.data.synthetic_dataset`); both stay importable from here.
"""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing
import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from talkinghead.data import index as dsindex
from talkinghead.data.settings import STATE_DIR, PrepareSettings, check_settings, key_id
from talkinghead.data.split import IdentitySplit, check_part
from talkinghead.data.synthetic_dataset import crop_clip, synthetic_seeds, write_synthetic_dataset
from talkinghead.landmarks.pose import estimate_yaw
from talkinghead.video import IMAGE_SUFFIXES, VIDEO_SUFFIXES

log = logging.getLogger(__name__)

FRAME_BUFFER_BYTES = 512 * 2**20
STAGES = ("decode", "landmarks", "crop", "write")


class SkipVideo(Exception):
    """This input cannot become a video of the dataset; the message is the reason recorded in the report."""


@dataclass(frozen=True)
class SourceItem:
    """One input: a video file or a still image."""

    key: str
    identity: str
    kind: str
    """``video`` or ``image``."""
    path: str
    """Absolute path of the file."""


@dataclass
class PrepareReport:
    """What one `prepare_dataset` run did (written to ``report.json``)."""

    input: str
    output: str
    shard: tuple[int, int]
    settings: dict[str, Any]
    discovered: int = 0
    in_shard: int = 0
    already_done: int = 0
    previously_skipped: int = 0
    written: int = 0
    skipped: int = 0
    frames_written: int = 0
    seconds: float = 0.0
    workers: int = 1
    stage_seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))
    skipped_reasons: dict[str, str] = field(default_factory=dict)

    @property
    def frames_per_second(self) -> float:
        return self.frames_written / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        values = asdict(self)
        total = sum(self.stage_seconds.values()) or 1.0
        values["frames_per_second"] = round(self.frames_per_second, 2)
        values["stage_share"] = {k: round(v / total, 4) for k, v in self.stage_seconds.items()}
        return values


# -- inputs -------------------------------------------------------------------------------------------------------

def discover_sources(videos: str | os.PathLike[str], split: IdentitySplit | None = None,
                     part: str = "all") -> list[SourceItem]:
    """Every video and image under ``videos`` (or ``videos`` itself when it is a file), sorted by key.

    Hidden files and folders (names starting with ``.``) are ignored; so are other file types. With an identity
    ``split``, it names each clip's person instead of the layout, its exclusions are left out, and ``part``
    (``train``, ``validation``, ``test`` or ``all``) keeps only the people of that part of the split (`split.PARTS`;
    ``train`` leaves out both the validation and the held-out people), or everyone.
    """
    check_part(part)
    root = Path(videos).resolve()
    if not root.exists():
        raise FileNotFoundError(f"input {videos} does not exist")
    if root.is_file():
        files, base = [root], root.parent
    else:
        files, base = [], root
        for folder, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            files.extend(Path(folder) / name for name in filenames if not name.startswith("."))
    items = []
    for path in files:
        suffix = path.suffix.lower()
        if suffix in VIDEO_SUFFIXES:
            kind = "video"
        elif suffix in IMAGE_SUFFIXES:
            kind = "image"
        else:
            continue
        relative = path.relative_to(base)
        identity = relative.parts[0] if len(relative.parts) > 1 else path.stem
        if split is not None:
            identity = split.identity_of(relative.as_posix())
            if identity is None or (part != "all" and split.part_of(identity) != part):
                continue
        items.append(SourceItem(key=relative.as_posix(), identity=identity, kind=kind, path=str(path)))
    items.sort(key=lambda item: item.key)
    if not items:
        log.warning("no video or image files found under %s", root)
    return items


def parse_shard(text: str) -> tuple[int, int]:
    """``"i/n"`` -> (i, n) with 0 <= i < n."""
    try:
        i, n = (int(part) for part in text.split("/"))
    except ValueError:
        raise ValueError(f"--shard must look like i/n (e.g. 0/4), got {text!r}") from None
    if not 0 <= i < n:
        raise ValueError(f"--shard {text}: need 0 <= i < n")
    return i, n


def in_shard(key: str, shard: tuple[int, int]) -> bool:
    index, count = shard
    return int(hashlib.sha256(key.encode()).hexdigest()[:15], 16) % count == index


# -- one video ----------------------------------------------------------------------------------------------------

class _StageTimer:
    def __init__(self) -> None:
        self.seconds = dict.fromkeys(STAGES, 0.0)

    def add(self, stage: str, seconds: float) -> None:
        self.seconds[stage] += seconds


def _source_frames(item: SourceItem, settings: PrepareSettings, timer: _StageTimer
                   ) -> tuple[Callable[[], Iterator[tuple[int, np.ndarray]]], float, tuple[int, int]]:
    """(a function returning a fresh iterator of (source frame number, RGB frame), fps, (width, height))."""
    from talkinghead.video import MediaError, VideoReader, read_image

    try:
        if item.kind == "image":
            image = read_image(item.path)
            size = (image.shape[1], image.shape[0])

            def frames() -> Iterator[tuple[int, np.ndarray]]:
                yield 0, image

            return frames, 0.0, size
        reader = VideoReader(item.path)
    except MediaError as error:
        raise SkipVideo(f"unreadable: {error}") from None

    def frames() -> Iterator[tuple[int, np.ndarray]]:
        kept = 0
        iterator = iter(reader)
        number = 0
        while settings.max_frames is None or kept < settings.max_frames:
            start = time.perf_counter()
            try:
                frame = next(iterator)
            except StopIteration:
                break
            except MediaError as error:
                if kept == 0:
                    raise SkipVideo(f"unreadable: {error}") from None
                log.warning("%s: %s; keeping the %d frames decoded before", item.path, error, kept)
                break
            finally:
                timer.add("decode", time.perf_counter() - start)
            if number % settings.every == 0:
                kept += 1
                yield number, frame
            number += 1

    return frames, reader.fps, reader.size


def process_item(item: SourceItem, output: Path, settings: PrepareSettings, temp_root: Path,
                 backend: Any = None) -> dict[str, Any]:
    """Turn one input into ``output/videos/<key>``. Returns ``{"key", "status": "written"|"exists"|"skipped",
    "reason", "frames", "stage_seconds"}``; never raises for a bad input (only for a broken installation)."""
    from talkinghead.landmarks.backends import NoFaceError

    output = Path(output)
    final = output / dsindex.VIDEOS_DIR / item.key
    timer = _StageTimer()
    result: dict[str, Any] = {"key": item.key, "status": "written", "reason": "", "frames": 0,
                              "stage_seconds": timer.seconds}
    if (final / dsindex.META_FILE).exists():
        result["status"] = "exists"
        return result
    temp = temp_root / key_id(item.key)
    shutil.rmtree(temp, ignore_errors=True)
    try:
        frames, landmarks, meta = _prepare_video(item, settings, timer, backend)
        if len(frames) < settings.min_frames:
            raise SkipVideo(f"too short: {len(frames)} usable frame(s), fewer than --min-frames "
                            f"{settings.min_frames}")
        start = time.perf_counter()
        temp.parent.mkdir(parents=True, exist_ok=True)
        dsindex.write_video_folder(temp, frames, landmarks, meta)
        final.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.rename(temp, final)
        except OSError:
            if (final / dsindex.META_FILE).exists():  # another process finished the same video first
                shutil.rmtree(temp, ignore_errors=True)
                result["status"] = "exists"
                return result
            raise
        timer.add("write", time.perf_counter() - start)
        result["frames"] = len(frames)
    except SkipVideo as error:
        result.update(status="skipped", reason=str(error))
    except NoFaceError as error:
        result.update(status="skipped", reason=f"no face: {error}")
    except (MemoryError, KeyboardInterrupt):
        raise
    except Exception as error:  # noqa: BLE001 - one bad video never aborts the run; the reason is reported
        log.exception("%s: unexpected error; skipping it", item.path)
        result.update(status="skipped", reason=f"error: {type(error).__name__}: {error}")
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    return result


def _prepare_video(item: SourceItem, settings: PrepareSettings, timer: _StageTimer, backend: Any
                   ) -> tuple[list[bytes], np.ndarray, dict[str, Any]]:
    """Decode -> track landmarks -> crop -> encode one input; returns (JPEG frames, crop landmarks, meta)."""
    from talkinghead.landmarks.backends import NoFaceError
    from talkinghead.landmarks.crop import crop_boxes, crop_image
    from talkinghead.landmarks.tracking import DETECTED, MISSING, track_video

    frames_fn, fps, (width, height) = _source_frames(item, settings, timer)
    if min(width, height) < 16:
        raise SkipVideo(f"too small: {width}x{height} pixels")
    buffer: list[np.ndarray] | None = []
    buffered = 0
    numbers: list[int] = []

    def feed() -> Iterator[np.ndarray]:
        nonlocal buffer, buffered
        for number, frame in frames_fn():
            numbers.append(number)
            if buffer is not None:
                buffered += frame.nbytes
                if buffered > FRAME_BUFFER_BYTES:
                    buffer = None  # long video: decode again for the crop pass
                else:
                    buffer.append(frame)
            yield frame

    start = time.perf_counter()
    decode_before = timer.seconds["decode"]
    try:
        track = track_video(feed(), backend=backend, source=item.path)
    except NoFaceError:
        if not numbers:
            raise SkipVideo("empty: no frame could be decoded") from None
        raise
    finally:
        timer.add("landmarks", time.perf_counter() - start - (timer.seconds["decode"] - decode_before))
    points = np.asarray(track.points, dtype=np.float32)
    if points.shape != (len(numbers), 68, 2):
        raise RuntimeError(f"tracker returned landmarks of shape {points.shape} for {len(numbers)} frames")
    found = (track.status != MISSING) & _plausible(points, width, height)
    if not found[track.status != MISSING].all():
        log.warning("%s: dropping %d frame(s) whose tracked landmarks left the frame or changed size implausibly",
                    item.path, int((~found & (track.status != MISSING)).sum()))
    detected = track.status == DETECTED
    keep = np.flatnonzero(found)
    start = time.perf_counter()
    boxes = crop_boxes(points[keep], fps=(fps / settings.every) if fps else 0.0, scale=settings.crop_scale,
                       lift=settings.crop_lift, smoothing_seconds=settings.crop_smoothing_seconds)
    boxes = [box.rounded() for box in boxes]
    timer.add("crop", time.perf_counter() - start)

    if buffer is not None:
        frame_source: Iterator[np.ndarray] = iter(buffer)
    else:
        frame_source = (frame for _, frame in frames_fn())
    encoded: list[bytes] = []
    crop_points = np.empty((keep.size, 68, 2), dtype=np.float32)
    slot = 0
    for position, frame in enumerate(frame_source):
        if slot >= keep.size:
            break
        if position != keep[slot]:
            continue
        start = time.perf_counter()
        crop, transform = crop_image(frame, boxes[slot], settings.image_size)
        crop_points[slot] = transform.to_crop(points[position])
        timer.add("crop", time.perf_counter() - start)
        start = time.perf_counter()
        encoded.append(dsindex.encode_frame(crop))
        timer.add("write", time.perf_counter() - start)
        slot += 1
    if slot != keep.size:
        raise SkipVideo(f"decoding gave {slot} frames on the second pass, {keep.size} expected (non-deterministic "
                        "decoder?)")
    meta = {
        "key": item.key,
        "identity": item.identity,
        "source": item.key,
        "source_kind": item.kind,
        "fps": round(fps / settings.every, 6) if fps else None,
        "source_fps": fps or None,
        "source_size": [width, height],
        "source_frames": [numbers[i] for i in keep.tolist()],
        "dropped_source_frames": [numbers[i] for i in np.flatnonzero(~found).tolist()],
        "detected": [int(i) for i in np.flatnonzero(detected[keep])],
        "crop_boxes": [[int(box.left), int(box.top), int(box.size)] for box in boxes],
        "image_size": settings.image_size,
        "crop": settings.index_settings()["crop"],
        "landmark_backend": settings.landmark_backend,
        # Head yaw per kept frame, degrees (landmarks/pose.py): the evaluation's large-yaw split reads it.
        "yaw": [round(float(v), 2) for v in estimate_yaw(crop_points, settings.image_size)],
    }
    return encoded, crop_points, meta


def _plausible(points: np.ndarray, width: int, height: int) -> np.ndarray:
    """[T] bool: landmarks whose box centre lies inside the image and whose extent is between 8 px and
    twice the image, and within a factor 2 of the video's median extent (a guard against tracker drift)."""
    low, high = points.min(axis=1), points.max(axis=1)  # [T, 2]
    centre = (low + high) / 2.0
    extent = (high - low).max(axis=1)
    inside = (centre[:, 0] >= 0) & (centre[:, 0] < width) & (centre[:, 1] >= 0) & (centre[:, 1] < height)
    sized = (extent >= 8) & (extent <= 2 * max(width, height))
    median = float(np.median(extent[inside & sized])) if (inside & sized).any() else 0.0
    steady = (extent >= median / 2) & (extent <= median * 2)
    return inside & sized & steady


# -- the whole run -------------------------------------------------------------------------------------------------

_WORKER: dict[str, Any] = {}


def _init_worker(output: str, settings: dict[str, Any], temp_root: str) -> None:
    import cv2

    cv2.setNumThreads(1)
    from talkinghead.landmarks.backends import get_backend

    settings_obj = PrepareSettings(**settings)
    _WORKER.update(output=Path(output), settings=settings_obj, temp_root=Path(temp_root),
                   backend=get_backend(settings_obj.landmark_backend))


def _work(item: SourceItem) -> dict[str, Any]:
    return process_item(item, _WORKER["output"], _WORKER["settings"], _WORKER["temp_root"], _WORKER["backend"])


def prepare_dataset(videos: str | os.PathLike[str], output: str | os.PathLike[str],
                    settings: PrepareSettings | None = None, workers: int = 1, shard: tuple[int, int] = (0, 1),
                    retry_skipped: bool = False, progress: bool = False,
                    on_result: Callable[[dict[str, Any]], None] | None = None,
                    split: IdentitySplit | None = None) -> PrepareReport:
    """Build (or resume) a dataset; see the module docstring. Returns the run's report (also written to
    ``report.json``, or ``report-shard-i-of-n.json`` for a shard, beside ``skipped.jsonl``).

    ``on_result`` is called in this process after each input is handled (tests use it to interrupt a run).
    ``split`` names the people (see `discover_sources`); its hash and ``settings.split_part`` are part of the
    settings, so a re-run with another split file or part is refused.
    """
    settings = settings or PrepareSettings()
    if (split.sha256 if split is not None else None) != settings.identity_split_sha256:
        raise ValueError("settings.identity_split_sha256 must be the sha256 of the split passed (or both None)")
    settings.validate()
    if workers < 1:
        raise ValueError(f"--workers must be >= 1, got {workers}")
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    check_settings(output, settings)
    state = output / STATE_DIR
    skipped_dir = state / "skipped"
    temp_root = state / "tmp" / f"shard-{shard[0]}-of-{shard[1]}"
    shutil.rmtree(temp_root, ignore_errors=True)  # a killed run's half-written videos
    temp_root.mkdir(parents=True, exist_ok=True)
    skipped_dir.mkdir(parents=True, exist_ok=True)

    started = time.perf_counter()
    items = discover_sources(videos, split, settings.split_part)
    report = PrepareReport(input=str(Path(videos).resolve()), output=str(output.resolve()), shard=shard,
                           settings=asdict(settings), discovered=len(items), workers=workers)
    mine = [item for item in items if in_shard(item.key, shard)]
    report.in_shard = len(mine)
    todo = []
    for item in mine:
        marker = skipped_dir / f"{key_id(item.key)}.json"
        if (output / dsindex.VIDEOS_DIR / item.key / dsindex.META_FILE).exists():
            report.already_done += 1
        elif marker.exists() and not retry_skipped:
            report.previously_skipped += 1
        else:
            marker.unlink(missing_ok=True)
            todo.append(item)
    log.info("%s: %d inputs (%d in shard %d/%d): %d done before, %d skipped before, %d to do with %d worker(s)",
             videos, len(items), len(mine), shard[0], shard[1], report.already_done, report.previously_skipped,
             len(todo), workers)

    by_key = {item.key: item for item in todo}

    def handle(result: dict[str, Any]) -> None:
        for stage, seconds in result["stage_seconds"].items():
            report.stage_seconds[stage] += seconds
        if result["status"] == "written":
            report.written += 1
            report.frames_written += result["frames"]
        elif result["status"] == "exists":
            report.already_done += 1
        else:
            report.skipped += 1
            report.skipped_reasons[result["key"]] = result["reason"]
            item = by_key[result["key"]]
            dsindex.write_json_atomic(skipped_dir / f"{key_id(item.key)}.json",
                                      {"key": item.key, "source": item.path, "kind": item.kind,
                                       "reason": result["reason"]})
            log.warning("skipped %s: %s", item.key, result["reason"])
        if on_result is not None:
            on_result(result)

    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(todo), unit="video", desc="prepare")
    try:
        if workers == 1 or len(todo) <= 1:
            _init_worker(str(output), asdict(settings), str(temp_root))
            for item in todo:
                handle(_work(item))
                if bar is not None:
                    bar.update(1)
        else:
            context = multiprocessing.get_context("spawn")
            with context.Pool(workers, initializer=_init_worker,
                              initargs=(str(output), asdict(settings), str(temp_root))) as pool:
                for result in pool.imap_unordered(_work, todo, chunksize=1):
                    handle(result)
                    if bar is not None:
                        bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    report.seconds = time.perf_counter() - started

    index = dsindex.build_index(output, settings.index_settings())
    _write_skipped(output, skipped_dir)
    name = "report.json" if shard == (0, 1) else f"report-shard-{shard[0]}-of-{shard[1]}.json"
    values = report.to_dict()
    values["index"] = {"num_videos": index["num_videos"], "num_frames": index["num_frames"],
                       "num_identities": len(index["identities"]), "content_hash": index["content_hash"]}
    dsindex.write_json_atomic(output / name, values)
    log.info("%s: %d videos written (%d frames, %.1f frames/s), %d skipped; index has %d videos",
             output, report.written, report.frames_written, report.frames_per_second, report.skipped,
             index["num_videos"])
    return report


def rebuild_index(output: str | os.PathLike[str]) -> dict[str, Any]:
    """Rebuild ``index.json`` and ``skipped.jsonl`` from what is on disk (after shards, or to repair)."""
    output = Path(output)
    path = output / STATE_DIR / "settings.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: {output} was not written by `talkinghead prepare`")
    settings = PrepareSettings(**dsindex.read_json(path))
    index = dsindex.build_index(output, settings.index_settings())
    _write_skipped(output, output / STATE_DIR / "skipped")
    return index


def _write_skipped(output: Path, skipped_dir: Path) -> None:
    """``skipped.jsonl``: one JSON line per skipped input (all shards), sorted by key."""
    records = [dsindex.read_json(p) for p in sorted(skipped_dir.glob("*.json"))] if skipped_dir.is_dir() else []
    done = {r["key"] for r in records if (output / dsindex.VIDEOS_DIR / r["key"] / dsindex.META_FILE).exists()}
    records = sorted((r for r in records if r["key"] not in done), key=lambda r: r["key"])
    text = "".join(json.dumps(r, sort_keys=True) + "\n" for r in records)
    tmp = output / f".skipped.jsonl.{os.getpid()}.tmp"
    tmp.write_text(text)
    os.replace(tmp, output / "skipped.jsonl")


__all__ = [
    "FRAME_BUFFER_BYTES",
    "STAGES",
    "STATE_DIR",
    "PrepareReport",
    "PrepareSettings",
    "SkipVideo",
    "SourceItem",
    "crop_clip",
    "discover_sources",
    "in_shard",
    "parse_shard",
    "prepare_dataset",
    "process_item",
    "rebuild_index",
    "synthetic_seeds",
    "write_synthetic_dataset",
]
