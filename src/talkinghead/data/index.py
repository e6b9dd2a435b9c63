"""The dataset format on disk: one folder per video, and ``index.json`` over all of them.

Layout of a dataset folder ``DATASET``::

    DATASET/
      index.json                       the index (below); the only file training and evaluation read first
      report.json, skipped.jsonl       what the last `talkinghead prepare` run did and which inputs it skipped, why
      videos/<key>/                    one folder per video; <key> is the source path relative to the input
                                       folder, e.g. ``id00017/OLguY5ofUrY/00041.mp4`` (see `prepare`)
        frames/000000.jpg ...          the cropped frames, square, ``image_size`` pixels, JPEG quality 95
        landmarks.npy                  float32 [T, 68, 2] (x, y) iBUG-68 points in pixels of the stored frames
        meta.json                      source file, fps, source size, source frame numbers, crop boxes, which
                                       frames were detected (the rest tracked), hashes of frames and landmarks;
                                       crop boxes are [left, top, side] in source pixels (whole pixels)
      .state/                          resumability bookkeeping of `prepare` (settings, skip records, temp dirs)

Frames are JPEG at quality 95: a 256x256 frame decodes in ~0.5 ms with OpenCV (PNG: ~2.5 ms and 5x the
bytes), which keeps an episode of K + 1 = 9 frames well inside the 20 ms per-sample budget; q95 loses
little against the compression the source videos already went through.

``index.json``::

    {
      "format": "talkinghead-dataset", "version": 1,
      "image_size": 256, "frame_format": "jpg",
      "crop": {...the crop policy and its parameters...}, "landmark_backend": "dlib" | "synthetic" | ...,
      "identities": [{"name": "id00017", "videos": [0, 1]}, ...],          sorted by name
      "videos": [{"video_index": 0, "key": "id00017/OLguY5ofUrY/00041.mp4", "identity": "id00017",
                  "path": "videos/id00017/OLguY5ofUrY/00041.mp4", "num_frames": 20,
                  "frames_sha256": "...", "landmarks_sha256": "..."}, ...],
      "num_videos": 2, "num_frames": 40,
      "content_hash": "sha256 of the canonical JSON of everything above"
    }

``video_index`` is the position of the video's ``key`` in sorted order (Python string order of the keys),
so the same set of videos always gets the same indices, whichever run, worker or shard wrote them. The
discriminator's W has one row per ``video_index``: training checkpoints should keep ``content_hash`` (or
the key list) and refuse a dataset whose keys changed, because adding or removing a video renumbers the
videos after it.

Each video folder is complete or absent: `prepare` writes it under ``.state/tmp`` and renames it into
``videos/`` only when every file is written (rename is atomic on one file system), so `build_index` can
trust any ``videos/**/meta.json`` it finds.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

FORMAT_NAME = "talkinghead-dataset"
FORMAT_VERSION = 1
INDEX_FILE = "index.json"
VIDEOS_DIR = "videos"
FRAMES_DIR = "frames"
LANDMARKS_FILE = "landmarks.npy"
META_FILE = "meta.json"
FRAME_FORMAT = "jpg"
JPEG_QUALITY = 95
NUM_LANDMARKS = 68


class DatasetError(ValueError):
    """A dataset folder or one of its files is missing or inconsistent. The message names the file."""


@dataclass(frozen=True)
class VideoEntry:
    """One video of the index (see the module docstring for the fields)."""

    video_index: int
    key: str
    identity: str
    path: str
    num_frames: int
    frames_sha256: str
    landmarks_sha256: str


@dataclass(frozen=True)
class DatasetIndex:
    """``index.json`` loaded and checked. ``root`` is the dataset folder."""

    root: Path
    image_size: int
    frame_format: str
    crop: dict[str, Any]
    landmark_backend: str
    identities: dict[str, list[int]]
    videos: list[VideoEntry]
    content_hash: str

    @property
    def num_videos(self) -> int:
        return len(self.videos)

    @property
    def num_frames(self) -> int:
        return sum(v.num_frames for v in self.videos)

    def video_dir(self, video_index: int) -> Path:
        return self.root / self.videos[video_index].path

    def frame_path(self, video_index: int, frame: int) -> Path:
        return frame_path(self.video_dir(video_index), frame, self.frame_format)

    def landmarks(self, video_index: int) -> np.ndarray:
        """float32 [T, 68, 2] landmarks of one video (pixels of the stored frames)."""
        return load_landmarks(self.video_dir(video_index), self.videos[video_index].num_frames)

    def meta(self, video_index: int) -> dict[str, Any]:
        return read_json(self.video_dir(video_index) / META_FILE)

    def identity_record(self) -> dict[str, Any]:
        """Who is in this dataset, as a training checkpoint stores it (metadata ``"dataset"``) so evaluation can
        refuse those people: the content hash, identity names and, for synthetic datasets, the renderer's
        identity seeds (names like ``syn0000`` repeat across synthetic datasets of different seeds; seeds don't)."""
        record: dict[str, Any] = {"content_hash": self.content_hash, "identities": sorted(self.identities)}
        if self.landmark_backend == "synthetic":
            seeds = {self.meta(v.video_index).get("identity_seed") for v in self.videos}
            record["identity_seeds"] = sorted(int(s) for s in seeds if s is not None)
        return record


# -- small helpers shared by the writers -----------------------------------------------------------------------

def frame_path(video_dir: Path, frame: int, frame_format: str = FRAME_FORMAT) -> Path:
    return video_dir / FRAMES_DIR / f"{frame:06d}.{frame_format}"


def read_json(path: Path) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise DatasetError(f"{path} is missing") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DatasetError(f"{path} is not valid JSON ({error}); delete it and re-run `talkinghead prepare`") from None


def write_json_atomic(path: Path, value: Any) -> None:
    """Write JSON through a temporary file and a rename, so readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(value, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, path)


def canonical_hash(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def encode_frame(image: np.ndarray) -> bytes:
    """uint8 RGB [H, W, 3] -> JPEG bytes (quality `JPEG_QUALITY`)."""
    import cv2

    ok, buffer = cv2.imencode(".jpg", np.ascontiguousarray(image[:, :, ::-1]), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise DatasetError("JPEG encoding of a frame failed")
    return buffer.tobytes()


def decode_frame(path: Path) -> np.ndarray:
    """A stored frame -> uint8 RGB [H, W, 3]."""
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise DatasetError(f"frame {path} is missing or corrupt; re-run `talkinghead prepare` after deleting "
                           f"its video folder {path.parent.parent}")
    return image[:, :, ::-1]


def write_video_folder(folder: Path, frames: list[bytes], landmarks: np.ndarray, meta: dict[str, Any]) -> None:
    """Write one video's frames (already encoded), landmarks and meta into ``folder`` (which must be new).

    Adds ``num_frames``, ``frames_sha256`` and ``landmarks_sha256`` to ``meta``. The caller renames the
    folder into place; see `prepare`.
    """
    landmarks = np.ascontiguousarray(landmarks, dtype=np.float32)
    if landmarks.shape != (len(frames), NUM_LANDMARKS, 2):
        raise DatasetError(f"{folder}: landmarks have shape {landmarks.shape}, expected ({len(frames)}, 68, 2)")
    if not np.isfinite(landmarks).all():
        raise DatasetError(f"{folder}: landmarks contain NaN or infinity")
    (folder / FRAMES_DIR).mkdir(parents=True)
    frames_hash = hashlib.sha256()
    for t, data in enumerate(frames):
        frame_path(folder, t).write_bytes(data)
        frames_hash.update(hashlib.sha256(data).digest())
    np.save(folder / LANDMARKS_FILE, landmarks)
    meta = dict(meta, num_frames=len(frames), frames_sha256=frames_hash.hexdigest(),
                landmarks_sha256=hashlib.sha256(landmarks.tobytes()).hexdigest())
    write_json_atomic(folder / META_FILE, meta)


def load_landmarks(video_dir: Path, num_frames: int | None = None) -> np.ndarray:
    path = video_dir / LANDMARKS_FILE
    try:
        landmarks = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise DatasetError(f"{path} is missing; delete {video_dir} and re-run `talkinghead prepare`") from None
    except ValueError as error:
        raise DatasetError(f"{path} is not a valid .npy array ({error})") from None
    if landmarks.ndim != 3 or landmarks.shape[1:] != (NUM_LANDMARKS, 2) or landmarks.dtype != np.float32:
        raise DatasetError(f"{path}: expected float32 [T, 68, 2], got {landmarks.dtype} {list(landmarks.shape)}")
    if num_frames is not None and landmarks.shape[0] != num_frames:
        raise DatasetError(f"{path}: {landmarks.shape[0]} frames of landmarks, but the index says {num_frames}")
    return landmarks


# -- building and loading the index ----------------------------------------------------------------------------

def find_video_folders(root: Path) -> list[Path]:
    """Every complete video folder (one holding ``meta.json``) under ``root/videos``, sorted."""
    videos = Path(root) / VIDEOS_DIR
    if not videos.is_dir():
        return []
    return sorted(p.parent for p in videos.rglob(META_FILE) if (p.parent / FRAMES_DIR).is_dir())


def build_index(root: str | os.PathLike[str], settings: dict[str, Any]) -> dict[str, Any]:
    """Scan ``root/videos`` and write ``root/index.json``; returns the index as a dict.

    ``settings`` gives ``image_size``, ``crop`` and ``landmark_backend`` (as recorded by the writer).
    Any number of runs or shards may have written the video folders: the result depends only on which
    videos are there, never on the order they were written in.
    """
    root = Path(root)
    entries = []
    for folder in find_video_folders(root):
        meta = read_json(folder / META_FILE)
        missing = [k for k in ("key", "identity", "num_frames", "frames_sha256", "landmarks_sha256") if k not in meta]
        if missing:
            raise DatasetError(f"{folder / META_FILE} lacks {missing}; delete {folder} and re-run "
                               "`talkinghead prepare`")
        if meta.get("image_size") != settings["image_size"]:
            raise DatasetError(f"{folder / META_FILE}: image_size {meta.get('image_size')} differs from the "
                               f"dataset's {settings['image_size']}; delete it or use a new dataset folder")
        entries.append({"key": meta["key"], "identity": meta["identity"],
                        "path": folder.relative_to(root).as_posix(), "num_frames": int(meta["num_frames"]),
                        "frames_sha256": meta["frames_sha256"], "landmarks_sha256": meta["landmarks_sha256"]})
    entries.sort(key=lambda e: e["key"])
    keys = [e["key"] for e in entries]
    if len(set(keys)) != len(keys):
        raise DatasetError(f"{root}: two video folders have the same key; delete the duplicates")
    identities: dict[str, list[int]] = {}
    for video_index, entry in enumerate(entries):
        entry["video_index"] = video_index
        identities.setdefault(entry["identity"], []).append(video_index)
    index: dict[str, Any] = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "image_size": int(settings["image_size"]),
        "frame_format": FRAME_FORMAT,
        "crop": settings.get("crop", {}),
        "landmark_backend": settings.get("landmark_backend", "unknown"),
        "identities": [{"name": name, "videos": identities[name]} for name in sorted(identities)],
        "videos": entries,
        "num_videos": len(entries),
        "num_frames": sum(e["num_frames"] for e in entries),
    }
    if "identity_split" in settings:  # who named the people (talkinghead.data.split), and which part this is
        index["identity_split"] = settings["identity_split"]
    index["content_hash"] = canonical_hash(index)
    write_json_atomic(root / INDEX_FILE, index)
    log.info("%s: indexed %d videos of %d identities, %d frames", root / INDEX_FILE, len(entries),
             len(identities), index["num_frames"])
    return index


def load_index(root: str | os.PathLike[str], deep: bool = False) -> DatasetIndex:
    """Load and check ``root/index.json``.

    Always checked: the format and version, the fields, that indices are 0..n-1 in key order, that every
    video folder and its ``landmarks.npy`` exist. ``deep=True`` also opens every ``landmarks.npy`` (shape,
    frame count, hash) and checks every frame file exists (slow on big datasets; `validate_dataset`).
    """
    root = Path(root)
    path = root / INDEX_FILE
    if not path.exists():
        raise DatasetError(f"{path} is missing: {root} is not a talkinghead dataset; build one with "
                           f"`talkinghead prepare VIDEOS -o {root}`")
    raw = read_json(path)
    if raw.get("format") != FORMAT_NAME:
        raise DatasetError(f"{path}: format is {raw.get('format')!r}, expected {FORMAT_NAME!r}")
    if raw.get("version") != FORMAT_VERSION:
        raise DatasetError(f"{path}: version {raw.get('version')!r} is not supported (this code reads "
                           f"version {FORMAT_VERSION}); re-run `talkinghead prepare`")
    for field in ("image_size", "videos", "identities", "content_hash"):
        if field not in raw:
            raise DatasetError(f"{path}: field {field!r} is missing")
    expected_hash = canonical_hash({k: v for k, v in raw.items() if k != "content_hash"})
    if raw["content_hash"] != expected_hash:
        raise DatasetError(f"{path}: content_hash does not match the file's content (edited by hand?); "
                           f"rebuild it with `talkinghead prepare --index-only -o {root}`")
    videos = []
    for position, item in enumerate(raw["videos"]):
        try:
            entry = VideoEntry(**{k: item[k] for k in VideoEntry.__dataclass_fields__})
        except KeyError as error:
            raise DatasetError(f"{path}: video {position} lacks field {error}") from None
        if entry.video_index != position:
            raise DatasetError(f"{path}: video {position} has video_index {entry.video_index}")
        if position and entry.key <= videos[-1].key:
            raise DatasetError(f"{path}: videos are not sorted by key at video {position} ({entry.key!r})")
        if entry.num_frames < 1:
            raise DatasetError(f"{path}: video {entry.key!r} has no frames")
        folder = root / entry.path
        if not (folder / LANDMARKS_FILE).exists():
            raise DatasetError(f"{folder / LANDMARKS_FILE} is missing (video {entry.video_index}, {entry.key!r}); "
                               f"re-run `talkinghead prepare` on the same input to repair the dataset")
        videos.append(entry)
    identities = {item["name"]: list(item["videos"]) for item in raw["identities"]}
    index = DatasetIndex(root=root, image_size=int(raw["image_size"]), frame_format=raw.get("frame_format", "jpg"),
                         crop=raw.get("crop", {}), landmark_backend=raw.get("landmark_backend", "unknown"),
                         identities=identities, videos=videos, content_hash=raw["content_hash"])
    if deep:
        validate_dataset(index)
    return index


def validate_dataset(index: DatasetIndex) -> None:
    """Open every video's landmarks and check frames exist and hashes match; raises `DatasetError`."""
    for entry in index.videos:
        folder = index.root / entry.path
        landmarks = load_landmarks(folder, entry.num_frames)
        if hashlib.sha256(landmarks.tobytes()).hexdigest() != entry.landmarks_sha256:
            raise DatasetError(f"{folder / LANDMARKS_FILE}: content differs from its hash in the index")
        for t in range(entry.num_frames):
            if not frame_path(folder, t, index.frame_format).exists():
                raise DatasetError(f"{frame_path(folder, t, index.frame_format)} is missing (video {entry.key!r})")
        size = index.image_size
        if (landmarks < -size).any() or (landmarks > 2 * size).any():
            raise DatasetError(f"{folder / LANDMARKS_FILE}: landmarks far outside the {size}px frame")
