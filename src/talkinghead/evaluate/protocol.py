"""The protocol: which videos are tested, which frames are ground truth and which personalize the model for each
T, which video drives which in cross-identity reenactment, and the check that the test people are unseen.
Everything is deterministic from the seed and the video's key."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

DEFAULT_SHOTS = (1, 8, 32)
DEFAULT_TARGETS = 32
LARGE_YAW_DEGREES = 20.0
"""The large-yaw split's target frames differ in yaw from every source frame by more than this."""
SPLITS = ("random", "large-yaw", "mouth-open", "eyes-closed")
"""How target and source frames are chosen: `split_frames` (the paper's random split), `large_yaw_split_frames`,
`mouth_open_split_frames` or `eyes_closed_split_frames`."""
DEFAULT_WINDOW = 48
"""Consecutive frames per test video on which temporal stability is measured (random split; `temporal_window`)."""
MIN_WINDOW = 8
"""A video that cannot spare this many consecutive frames beside its targets and sources gets no window."""
YAW_GLITCH_DEGREES = 5.0
"""A frame whose yaw is this far from the median of its 5 neighbours (a landmark-tracking glitch) is no target of
the large-yaw split."""


class IdentityOverlapError(ValueError):
    """Test identities were seen in meta-learning: the numbers would measure memorization, not few-shot learning."""



def _rng(seed: int, *parts: object) -> np.random.Generator:
    digest = hashlib.sha256(":".join(str(p) for p in (seed, *parts)).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


@dataclass(frozen=True)
class VideoSplit:
    """The frames of one test video: ``targets`` (ground truth) and, disjoint from them, sources per T."""

    key: str
    video_index: int
    identity: str
    target_frames: tuple[int, ...]
    source_frames: dict[int, tuple[int, ...]]
    driver: str | None = None
    """Cross-identity: the key of the video whose motion drives this one (None: no cross-identity)."""
    window_frames: tuple[int, ...] = ()
    """Consecutive frames, disjoint from targets and sources, on which temporal stability is measured (empty: none)."""

    def to_json(self) -> dict:
        return {"key": self.key, "video_index": self.video_index, "identity": self.identity,
                "target_frames": list(self.target_frames),
                "source_frames": {str(t): list(f) for t, f in self.source_frames.items()}, "driver": self.driver,
                "window_frames": list(self.window_frames)}


def _checked_shots(shots: Sequence[int], targets: int) -> list[int]:
    """The sorted distinct T values of a split, after checking them and the number of targets."""
    shots = sorted({int(t) for t in shots})
    if not shots or shots[0] < 1:
        raise ValueError(f"shots must be positive integers, got {shots}")
    if targets < 1:
        raise ValueError(f"targets must be >= 1, got {targets}")
    return shots


def split_frames(key: str, num_frames: int, shots: Sequence[int], targets: int = DEFAULT_TARGETS,
                 seed: int = 0, exclude: Sequence[int] = ()) -> tuple[tuple[int, ...], dict[int, tuple[int, ...]]]:
    """(target frames, {T: source frames}) of one video, deterministic from ``seed`` and ``key``.

    Targets are a random sample of ``targets`` frames; the sources of T are the first T of a random order of
    the other frames, so sources never overlap targets and T = 1 ⊂ T = 8 ⊂ T = 32. Frames in ``exclude`` (the
    temporal window) are neither; with no exclusion the split is the one earlier versions made.
    """
    shots = _checked_shots(shots, targets)
    needed = shots[-1] + targets
    excluded = set(int(f) for f in exclude)
    if num_frames - len(excluded) < needed:
        raise ValueError(f"video {key!r} has {num_frames - len(excluded)} frames to split; T={shots[-1]} sources + "
                         f"{targets} hold-out frames need {needed}; use fewer --shots/--targets or longer videos")
    order = _rng(seed, "split", key).permutation(num_frames)
    if excluded:
        order = np.asarray([f for f in order if int(f) not in excluded])
    target_frames = tuple(sorted(int(t) for t in order[:targets]))
    rest = order[targets:]
    return target_frames, {t: tuple(sorted(int(f) for f in rest[:t])) for t in shots}


def temporal_window(key: str, num_frames: int, needed: int, length: int = DEFAULT_WINDOW,
                    seed: int = 0) -> tuple[int, ...]:
    """``length`` consecutive frames of a video (fewer when the video must keep ``needed`` other frames for targets
    and sources; none below `MIN_WINDOW`), placed at a seeded random start: where temporal stability is measured.
    The frames are taken out of the split (`split_frames` ``exclude``), so no window frame is a source."""
    length = min(int(length), num_frames - needed)
    if length < MIN_WINDOW:
        return ()
    start = int(_rng(seed, "window", key).integers(0, num_frames - length + 1))
    return tuple(range(start, start + length))


def mouth_open_split_frames(key: str, openness: np.ndarray, shots: Sequence[int], targets: int = DEFAULT_TARGETS,
                            seed: int = 0, open_above: float | None = None, closed_below: float | None = None
                            ) -> tuple[tuple[int, ...], dict[int, tuple[int, ...]]] | str:
    """(target frames, {T: source frames}) for the mouth-open split, or the reason this video cannot have one.

    Targets: up to ``targets`` frames whose mouth is open (inner-lip gap over `metrics.mouth.MOUTH_OPEN`), a random
    sample; sources: frames whose mouth is closed (under `metrics.mouth.MOUTH_CLOSED`) in a random order, so that
    T = 1 ⊂ T = 8 ⊂ T = 32 and every source shows the mouth closed: the method must invent the open mouth's inside.
    openness: `metrics.mouth.mouth_openness` per stored frame [N]."""
    from talkinghead.metrics.mouth import MOUTH_CLOSED, MOUTH_OPEN

    shots = _checked_shots(shots, targets)
    open_above = MOUTH_OPEN if open_above is None else open_above
    closed_below = MOUTH_CLOSED if closed_below is None else closed_below
    openness = np.asarray(openness, dtype=np.float64)
    opened = np.flatnonzero(openness > open_above)
    closed = np.flatnonzero(openness < closed_below)
    return _sampled(key, opened, closed, shots, targets, seed, "mouth",
                    f"the mouth open (gap > {open_above:g} inter-ocular)",
                    f"the mouth closed (gap < {closed_below:g} inter-ocular)")


def eyes_closed_split_frames(key: str, relative_openness: np.ndarray, shots: Sequence[int],
                             targets: int = DEFAULT_TARGETS, seed: int = 0
                             ) -> tuple[tuple[int, ...], dict[int, tuple[int, ...]]] | str:
    """(target frames, {T: source frames}) for the eyes-closed split, or the reason this video cannot have one.

    Targets: up to ``targets`` frames whose eyes are shut (openness under `metrics.eyes.EYES_CLOSED` of the video's
    median: a blink), a random sample; sources: frames whose eyes are open (over `metrics.eyes.EYES_OPEN`) in a
    random order, T = 1 ⊂ T = 8 ⊂ T = 32, so every source shows the eyes open and the method must draw the lids.
    relative_openness: `metrics.eyes.relative_eye_openness` of the video [N]."""
    from talkinghead.metrics.eyes import EYES_CLOSED, EYES_OPEN

    shots = _checked_shots(shots, targets)
    relative_openness = np.asarray(relative_openness, dtype=np.float64)
    shut = np.flatnonzero(relative_openness < EYES_CLOSED)
    opened = np.flatnonzero(relative_openness > EYES_OPEN)
    return _sampled(key, shut, opened, shots, targets, seed, "eyes",
                    f"the eyes shut (openness < {EYES_CLOSED:g} of the video's median)",
                    f"the eyes open (openness > {EYES_OPEN:g} of the video's median)")


def _sampled(key: str, target_pool: np.ndarray, source_pool: np.ndarray, shots: tuple[int, ...], targets: int,
             seed: int, tag: str, target_state: str, source_state: str
             ) -> tuple[tuple[int, ...], dict[int, tuple[int, ...]]] | str:
    """A random sample of up to ``targets`` frames of ``target_pool``, and the first T of ``source_pool`` in a
    random order for each T (nested), seeded by (seed, tag, key); or why the video cannot have them (too few
    source frames for the largest T, or no target frame), naming each pool by its state ("the mouth closed ...")."""
    if len(source_pool) < shots[-1]:
        return f"{len(source_pool)} frames with {source_state}, T = {shots[-1]} needs {shots[-1]}"
    if len(target_pool) == 0:
        return f"no frame with {target_state}"
    chosen = target_pool[_rng(seed, f"{tag}-targets", key).permutation(len(target_pool))[:targets]]
    order = source_pool[_rng(seed, f"{tag}-sources", key).permutation(len(source_pool))]
    return (tuple(sorted(int(f) for f in chosen)),
            {t: tuple(sorted(int(f) for f in order[:t])) for t in shots})


def large_yaw_split_frames(key: str, yaw: np.ndarray, shots: Sequence[int], targets: int = DEFAULT_TARGETS,
                           seed: int = 0, degrees: float = LARGE_YAW_DEGREES
                           ) -> tuple[tuple[int, ...], dict[int, tuple[int, ...]]] | None:
    """(target frames, {T: source frames}) chosen for yaw, or None when the video's head turns too little.

    On real clips the head turns little (median |yaw| about 4°), so random sources almost always include one
    within 20° of every target. Here the targets are the (at most ``targets``) frames turned furthest to one
    side, and the sources are drawn, in a random order so that T = 1 ⊂ T = 8 ⊂ T = 32, from the frames whose yaw
    is more than ``degrees`` short of every target's: every target then differs from every source by more than
    ``degrees`` (yaw [N] in degrees per stored frame). A target frame must also agree within
    `YAW_GLITCH_DEGREES` with the median yaw of its 5 neighbours, so that a landmark-tracking glitch is not
    taken for a head turn. The side (right or left) that gives more targets is used; the most targets such that
    at least max(T) sources remain.
    """
    shots = _checked_shots(shots, targets)
    yaw = np.asarray(yaw, dtype=np.float64)
    if yaw.ndim != 1 or not np.all(np.isfinite(yaw)):
        raise ValueError(f"video {key!r}: yaw must be finite degrees per frame [N], got shape {yaw.shape}")
    padded = np.pad(yaw, 2, mode="edge")
    neighbourhood = np.median(np.stack([padded[i:i + len(yaw)] for i in range(5)]), axis=0)
    steady = np.abs(yaw - neighbourhood) <= YAW_GLITCH_DEGREES
    best: tuple[int, np.ndarray, np.ndarray] | None = None
    for side in (1.0, -1.0):
        turned = side * yaw
        candidates = [int(f) for f in np.argsort(-turned, kind="stable") if steady[f]]
        for count in range(min(targets, len(candidates)), 0, -1):
            chosen = np.asarray(candidates[:count])
            pool = np.flatnonzero(turned < turned[chosen].min() - degrees)
            if len(pool) >= shots[-1]:
                if best is None or count > best[0]:
                    best = (count, chosen, pool)
                break
    if best is None:
        return None
    _, chosen, pool = best
    order = pool[_rng(seed, "yaw-split", key).permutation(len(pool))]
    return (tuple(sorted(int(f) for f in chosen)),
            {t: tuple(sorted(int(f) for f in order[:t])) for t in shots})


def pick_test_videos(index, num_videos: int | None, min_frames: int, seed: int = 0,
                     exclude_identities: set[str] | frozenset[str] = frozenset(),
                     per_identity: int | None = None, keep: Callable[[Any], bool] | None = None) -> list:
    """``num_videos`` videos (all when None) with at least ``min_frames`` frames, not of ``exclude_identities``,
    chosen uniformly and deterministically (ranked by a hash of seed and key), returned in key order.
    ``per_identity``: at most this many videos of one person (the same hash ranking picks them), so that a
    person with many clips does not outweigh the others. ``keep``: only videos for which it is true (the
    large-yaw split keeps the videos whose head turns enough)."""
    eligible = [v for v in index.videos if v.num_frames >= min_frames and v.identity not in exclude_identities]
    if keep is not None:
        eligible = [v for v in eligible if keep(v)]
    if not eligible:
        raise ValueError(f"{index.root}: no video has the {min_frames} frames evaluation needs (T sources + hold-out "
                         "targets)" + (" and the head turns the split needs" if keep is not None else "")
                         + "; use fewer --shots/--targets")
    eligible = sorted(eligible, key=lambda v: hashlib.sha256(f"{seed}:pick:{v.key}".encode()).hexdigest())
    if per_identity is not None:
        if per_identity < 1:
            raise ValueError(f"--per-identity must be >= 1, got {per_identity}")
        taken: dict[str, int] = {}
        kept = []
        for video in eligible:
            if taken.get(video.identity, 0) < per_identity:
                taken[video.identity] = taken.get(video.identity, 0) + 1
                kept.append(video)
        eligible = kept
    if num_videos is not None:
        if num_videos < 1:
            raise ValueError(f"--videos must be >= 1, got {num_videos}")
        if num_videos > len(eligible):
            raise ValueError(f"{index.root}: {num_videos} test videos asked for, but only {len(eligible)} have at "
                             f"least {min_frames} frames (and unseen identities); use --videos {len(eligible)}")
        eligible = eligible[:num_videos]
    return sorted(eligible, key=lambda v: v.key)


def assign_drivers(videos: Sequence) -> dict[str, str | None]:
    """Cross-identity pairs: each video is driven by the next video (cyclically, in key order) of another
    identity; None when every test video shows the same person."""
    drivers: dict[str, str | None] = {}
    for i, video in enumerate(videos):
        drivers[video.key] = next((videos[(i + j) % len(videos)].key for j in range(1, len(videos))
                                   if videos[(i + j) % len(videos)].identity != video.identity), None)
    return drivers


# --- unseen identities -------------------------------------------------------------------------------------------


def _synthetic_seed(index, video_index: int) -> int | None:
    meta = index.meta(video_index)
    return int(meta["identity_seed"]) if "identity_seed" in meta else None


def dataset_identity_record(index) -> dict:
    """What a training checkpoint stores about its people (`DatasetIndex.identity_record`)."""
    return index.identity_record()


def check_identity_overlap(index, videos: Sequence, metadata: dict, allow_overlap: bool = False) -> dict:
    """Refuse test videos whose people were seen in meta-learning, as recorded in the checkpoint's metadata.

    Reads ``metadata["dataset"]`` (`dataset_identity_record`) or top-level ``identities`` /
    ``identity_seeds``; without them, a ``dataset_hash`` equal to this dataset's means every video was trained
    on. Returns what was checked (for the report); raises `IdentityOverlapError` on overlap unless
    ``allow_overlap``.
    """
    recorded = dict(metadata.get("dataset") or {})
    for name in ("identities", "identity_seeds", "dataset_hash"):
        if name in metadata and name not in recorded:
            recorded[name] = metadata[name]
    trained_hash = recorded.get("content_hash") or recorded.get("dataset_hash")
    test_names = sorted({v.identity for v in videos})
    overlap: list[str] = []
    if recorded.get("identity_seeds") is not None and index.landmark_backend == "synthetic":
        seeds = set(recorded["identity_seeds"])
        overlap = sorted({v.identity for v in videos if _synthetic_seed(index, v.video_index) in seeds})
        how = "synthetic identity seeds recorded in the checkpoint"
    elif recorded.get("identities") is not None:
        overlap = sorted(set(test_names) & set(recorded["identities"]))
        how = "identity names recorded in the checkpoint"
    elif trained_hash and trained_hash == index.content_hash:
        overlap = test_names
        how = "the checkpoint was trained on this dataset (same content hash) and records no identity list"
    else:
        how = ("unverified: the checkpoint records no training identities"
               + (" and was trained on another dataset" if trained_hash else ""))
        log.warning("cannot check that test identities are unseen (%s); store dataset_identity_record(index) "
                    "in the training checkpoint's metadata", how)
    result = {"method": how, "overlap": overlap, "allowed": bool(allow_overlap and overlap)}
    if overlap and not allow_overlap:
        raise IdentityOverlapError(
            f"{len(overlap)} of {len(test_names)} test identities were seen in meta-learning ({how}): "
            f"{overlap[:5]}; evaluate on a dataset of unseen people, or pass --allow-overlap (the numbers then "
            "measure memorization, not few-shot learning)")
    if overlap:
        log.warning("evaluating on %d identities seen in training (--allow-overlap)", len(overlap))
    return result
