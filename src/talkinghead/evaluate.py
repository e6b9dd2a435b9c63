"""The paper's evaluation protocol (§4): self-reenactment on unseen people, with baselines, plus cross-identity
reenactment and a large-yaw split. `evaluate(...)` is what ``talkinghead evaluate`` and the demo call.

Self-reenactment (paper §4, "50 videos ... 32 hold-out frames each"): for each test video, ``targets`` frames
(default 32) are the ground truth and, disjoint from them, T frames personalize the model, for each T of
``shots`` (the T = 1 frames are among the T = 8 frames, and so on, so T only adds information). Each ground-truth
frame is generated from its own landmarks (the dataset's, in its crop pixels: no retargeting) by the avatar's
``render``: feed-forward (ours-FF, ψ̂ = P ê) and fine-tuned (ours-FT, paper §3.3, default 40 epochs). The
copy-source and mesh-warp baselines (`metrics.baselines`) see the same T frames and the same targets. Frame
choices are deterministic from the seed and the video's key, and written to ``splits.json``.

Metrics per generated frame: SSIM, PSNR, L1 (against the ground truth), CSIM (identity descriptors, dlib by
default or ArcFace from an ONNX file), AKD and inter-ocular normalized AKD (landmarks detected on output and
ground truth); a video's value is the mean over its frames, a report row the mean over videos with a 95%
Student-t interval (`metrics.report`). FID is computed over all target frames of a (method, T) when the standard
Inception weights can be had, else reported as unavailable. Descriptors and landmarks of ground-truth frames
are computed once and cached (``cache/``).

Large-yaw split (when the dataset records yaw: ``meta.json`` "yaw", or a synthetic clip's motion seed): the
same metrics over only the target frames whose yaw differs from every source frame's by more than 20°.

Cross-identity reenactment (``cross_identity=True``): each test video A is driven by the next test video B of
another identity (B's target frames, B's landmarks retargeted onto A's first source frame, in ``relative`` and
``absolute`` mode, reference = B's frame most similar to A's source). Identity: CSIM of each output against A's
source frames (mean). Motion following: AKD between the output's detected landmarks and the retargeted
landmarks. On synthetic datasets (clips record identity and motion seeds) the renderer draws the true "A with
B's motion" frame, framed by the same crop policy as every dataset clip, so SSIM / PSNR / L1 apply too.

Output folder::

    OUT/settings.json     what was evaluated (a resumed run must match it)
    OUT/splits.json       per video: target frames, source frames per T, cross-identity driver
    OUT/videos/*.json     per-video records (resume skips finished videos)
    OUT/report.json, table.md, plots/*.png       self-reenactment (Table 1 layout)
    OUT/large_yaw/...     the large-yaw split (if yaw is known)
    OUT/cross_identity/{relative,absolute}/...   cross-identity reports
    OUT/sheets/<video>_T<T>.png                  contact sheets: source | ground truth | each method
    OUT/cache/            identity descriptors, ground-truth landmarks, FID features
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

DEFAULT_SHOTS = (1, 8, 32)
DEFAULT_TARGETS = 32
LARGE_YAW_DEGREES = 20.0
FEED_FORWARD = "ours-FF"
FINE_TUNED = "ours-FT"
COPY_SOURCE = "copy-source"
MESH_WARP = "mesh-warp"
SHEET_ROWS = 8
RETARGET_MODES = ("relative", "absolute")

Detector = Callable[[np.ndarray], "np.ndarray | None"]
"""detector(uint8 RGB image) -> [68, 2] landmarks, or None when no face is found."""


class IdentityOverlapError(ValueError):
    """Test identities were seen in meta-learning: the numbers would measure memorization, not few-shot learning."""


# --- the split -------------------------------------------------------------------------------------------------


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

    def to_json(self) -> dict:
        return {"key": self.key, "video_index": self.video_index, "identity": self.identity,
                "target_frames": list(self.target_frames),
                "source_frames": {str(t): list(f) for t, f in self.source_frames.items()}, "driver": self.driver}


def split_frames(key: str, num_frames: int, shots: Sequence[int], targets: int = DEFAULT_TARGETS,
                 seed: int = 0) -> tuple[tuple[int, ...], dict[int, tuple[int, ...]]]:
    """(target frames, {T: source frames}) of one video, deterministic from ``seed`` and ``key``.

    Targets are a random sample of ``targets`` frames; the sources of T are the first T of a random order of
    the other frames, so sources never overlap targets and T = 1 ⊂ T = 8 ⊂ T = 32.
    """
    shots = sorted({int(t) for t in shots})
    if not shots or shots[0] < 1:
        raise ValueError(f"shots must be positive integers, got {shots}")
    if targets < 1:
        raise ValueError(f"targets must be >= 1, got {targets}")
    needed = shots[-1] + targets
    if num_frames < needed:
        raise ValueError(f"video {key!r} has {num_frames} frames; T={shots[-1]} sources + {targets} hold-out "
                         f"frames need {needed}; use fewer --shots/--targets or longer videos")
    order = _rng(seed, "split", key).permutation(num_frames)
    target_frames = tuple(sorted(int(t) for t in order[:targets]))
    rest = order[targets:]
    return target_frames, {t: tuple(sorted(int(f) for f in rest[:t])) for t in shots}


def pick_test_videos(index, num_videos: int | None, min_frames: int, seed: int = 0,
                     exclude_identities: set[str] | frozenset[str] = frozenset(),
                     per_identity: int | None = None) -> list:
    """``num_videos`` videos (all when None) with at least ``min_frames`` frames, not of ``exclude_identities``,
    chosen uniformly and deterministically (ranked by a hash of seed and key), returned in key order.
    ``per_identity``: at most this many videos of one person (the same hash ranking picks them), so that a
    person with many clips does not outweigh the others."""
    eligible = [v for v in index.videos if v.num_frames >= min_frames and v.identity not in exclude_identities]
    if not eligible:
        raise ValueError(f"{index.root}: no video has the {min_frames} frames evaluation needs (T sources + hold-out "
                         "targets); use fewer --shots/--targets")
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


# --- frames, yaw and the synthetic ground truth -----------------------------------------------------------------


def load_frames(index, video_index: int, frames: Sequence[int], size: int) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 [n, size, size, 3], landmarks float32 [n, 68, 2]) of stored frames, resized to the model's size."""
    import cv2

    from talkinghead.data.index import decode_frame

    landmarks = index.landmarks(video_index)[list(frames)].astype(np.float32)
    images = [decode_frame(index.frame_path(video_index, int(f))) for f in frames]
    if index.image_size != size:
        images = [cv2.resize(i, (size, size), interpolation=cv2.INTER_AREA if index.image_size > size
                             else cv2.INTER_CUBIC) for i in images]
        landmarks = landmarks * (size / index.image_size)
    return np.stack(images), landmarks


def video_yaw(index, video_index: int) -> np.ndarray | None:
    """Yaw in degrees per stored frame [T], when known: ``meta.json`` "yaw", or a synthetic clip's motion."""
    meta = index.meta(video_index)
    if "yaw" in meta:
        return np.asarray(meta["yaw"], dtype=np.float64)
    if "motion_seed" not in meta:
        return None
    from talkinghead.data.synthetic import Motion

    source_frames = meta.get("source_frames") or list(range(index.videos[video_index].num_frames))
    motion = Motion.sample(int(meta["motion_seed"]), _rendered_frames(meta, len(source_frames)))
    return np.asarray(motion.yaw, dtype=np.float64)[np.asarray(source_frames)]


def _rendered_frames(meta: dict, stored: int) -> int:
    """How many frames the synthetic writer rendered for a clip (its motion's length; yaw depends on it)."""
    return len(meta.get("source_frames") or range(stored)) + len(meta.get("dropped_source_frames") or [])


def is_synthetic(index, video_index: int) -> bool:
    meta = index.meta(video_index)
    return "identity_seed" in meta and "motion_seed" in meta


def synthetic_cross_ground_truth(index, identity_video: int, motion_video: int, frames: Sequence[int],
                                 size: int) -> tuple[np.ndarray, np.ndarray]:
    """The true frames of identity A (``identity_video``'s person) performing ``motion_video``'s motion at
    ``frames`` of that clip, framed by the crop policy as the synthetic writer frames a clip:
    (uint8 [n, size, size, 3], landmarks [n, 68, 2] in those crops)."""
    import cv2

    from talkinghead.data.synthetic import Identity, Motion, frame_landmarks, render_frame
    from talkinghead.landmarks.crop import crop_boxes, crop_image

    meta_a, meta_b = index.meta(identity_video), index.meta(motion_video)
    render_size = int((meta_b.get("source_size") or [index.image_size])[0])
    count = _rendered_frames(meta_b, index.videos[motion_video].num_frames)
    identity = Identity.sample(int(meta_a["identity_seed"]))
    motion = Motion.sample(int(meta_b["motion_seed"]), count)
    crop = meta_b.get("crop") or {}
    points = np.stack([frame_landmarks(identity, motion.frame(t), render_size) for t in range(count)])
    boxes = None
    if crop.get("policy", "none") != "none":
        boxes = crop_boxes(points, fps=float(meta_b.get("fps", 25.0)), scale=crop["scale"], lift=crop["lift"],
                           smoothing_seconds=crop["smoothing_seconds"])
    images, landmarks = [], []
    for t in frames:
        image, frame_points = render_frame(identity, motion.frame(int(t)), render_size)
        if boxes is not None:
            box = boxes[int(t)].rounded()
            image, transform = crop_image(image, box, index.image_size)
            frame_points = transform.to_crop(frame_points)
        if image.shape[0] != size:
            frame_points = frame_points * (size / image.shape[0])
            image = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
        images.append(image)
        landmarks.append(frame_points.astype(np.float32))
    return np.stack(images), np.stack(landmarks)


# --- metrics with caches ---------------------------------------------------------------------------------------


def default_detector() -> Detector:
    """The project's landmark detector (dlib) as ``image -> [68, 2] | None``."""
    from talkinghead.landmarks import NoFaceError, detect_landmarks

    def detect(image: np.ndarray) -> np.ndarray | None:
        try:
            return np.asarray(detect_landmarks(image), dtype=np.float64)
        except NoFaceError:
            return None

    return detect


class FrameScorer:
    """Per-frame metrics with the ground truth's descriptors and landmarks computed once (keyed by frame)."""

    def __init__(self, identity, detector: Detector) -> None:
        self.identity = identity  # a metrics.identity.CachedIdentity
        self.detector = detector
        self.landmarks: dict[str, np.ndarray | None] = {}
        self.seconds = 0.0

    def reference_landmarks(self, image: np.ndarray, key: str) -> np.ndarray | None:
        if key not in self.landmarks:
            self.landmarks[key] = self.detector(image)
        return self.landmarks[key]

    def descriptor(self, image: np.ndarray, key: str | None = None) -> np.ndarray | None:
        return self.identity.descriptor(image, key)

    def score(self, output: np.ndarray, reference: np.ndarray | None = None, reference_key: str | None = None,
              target_landmarks: np.ndarray | None = None,
              identity_references: Sequence[tuple[np.ndarray, str]] = ()) -> dict[str, float | None]:
        """Metrics of one output frame.

        reference: the true frame (SSIM, PSNR, L1; CSIM and AKD against it when ``reference_key`` is given).
        target_landmarks: landmarks the output should have (AKD against them instead of the detected ones).
        identity_references: (image, key) pairs; CSIM = mean cosine to their descriptors (instead of the
        reference's).
        """
        from talkinghead.metrics.identity import cosine_similarity
        from talkinghead.metrics.image import l1, psnr, ssim
        from talkinghead.metrics.landmark_distance import landmark_distance

        started = time.perf_counter()
        values: dict[str, float | None] = {}
        if reference is not None:
            values.update(ssim=ssim(output, reference), psnr=psnr(output, reference), l1=l1(output, reference))
        references = list(identity_references) or ([(reference, reference_key)] if reference_key else [])
        if references:
            mine = self.descriptor(output)
            cosines = [cosine_similarity(mine, theirs) for image, key in references
                       if mine is not None and (theirs := self.descriptor(image, key)) is not None]
            values["csim"] = float(np.mean(cosines)) if cosines else None
        if target_landmarks is None and reference_key is not None:
            target_landmarks = self.reference_landmarks(reference, reference_key)
        if target_landmarks is not None or reference_key is not None:
            detected = self.detector(output)
            if detected is None or target_landmarks is None:
                values.update(akd=None, normalized_akd=None)
            else:
                distance = landmark_distance(detected, target_landmarks)
                values.update(akd=distance.akd, normalized_akd=distance.normalized_akd)
        self.seconds += time.perf_counter() - started
        return values


def mean_metrics(per_frame: Sequence[dict[str, float | None]], names: Sequence[str] | None = None) -> dict:
    """Mean of each metric over frames, leaving out None (a missing face); None when no frame has a value."""
    names = names or sorted({k for values in per_frame for k in values})
    result: dict[str, float | None] = {}
    for name in names:
        present = [v[name] for v in per_frame if v.get(name) is not None]
        result[name] = float(np.mean(present)) if present else None  # PSNR of an exact copy stays inf
    return result


# --- the evaluation ---------------------------------------------------------------------------------------------


@dataclass
class _Context:
    head: Any
    index: Any
    out: Path
    shots: list[int]
    size: int
    scorer: FrameScorer
    finetune_steps: int | None
    finetune_epochs: int | None
    content_loss: Callable | None
    seed: int
    cross_identity: bool
    modes: tuple[str, ...]
    fid_network: Any
    timing: dict[str, float] = field(default_factory=lambda: {"personalization_s": 0.0, "generation_s": 0.0,
                                                               "baselines_s": 0.0, "frames_generated": 0})

    @property
    def finetune(self) -> bool:
        return self.finetune_steps != 0 and self.finetune_epochs != 0


def _source_objects(images: np.ndarray, landmarks: np.ndarray, key: str, frames: Sequence[int]) -> list:
    from talkinghead.inference import Source

    size = images.shape[1]
    return [Source(f"{key} frame {f}", image, image, points, (0.0, 0.0, float(size)))
            for image, points, f in zip(images, landmarks, frames, strict=True)]


def _avatars(ctx: _Context, sources: list) -> dict[str, Any]:
    started = time.perf_counter()
    avatars = {FEED_FORWARD: ctx.head.personalize(sources, steps=0, check_identity=False)}
    if ctx.finetune:
        avatars[FINE_TUNED] = ctx.head.personalize(sources, steps=ctx.finetune_steps or 0,
                                                   epochs=None if ctx.finetune_steps else ctx.finetune_epochs,
                                                   content_loss=ctx.content_loss, seed=ctx.seed,
                                                   check_identity=False)
    ctx.timing["personalization_s"] += time.perf_counter() - started
    return avatars


def _generate(ctx: _Context, avatars: dict, source_images: np.ndarray, source_landmarks: np.ndarray,
              target_landmarks: np.ndarray) -> dict[str, list[np.ndarray]]:
    """Every method's output for each target landmark set: baselines, then the avatars' renders."""
    from talkinghead.metrics.baselines import copy_source, mesh_warp

    started = time.perf_counter()
    outputs: dict[str, list[np.ndarray]] = {
        COPY_SOURCE: [copy_source(source_images, source_landmarks, t) for t in target_landmarks],
        MESH_WARP: [mesh_warp(source_images, source_landmarks, t) for t in target_landmarks],
    }
    ctx.timing["baselines_s"] += time.perf_counter() - started
    started = time.perf_counter()
    for method, avatar in avatars.items():
        outputs[method] = render_batch(avatar, target_landmarks)
        ctx.timing["frames_generated"] += len(target_landmarks)
    ctx.timing["generation_s"] += time.perf_counter() - started
    return outputs


def render_batch(avatar, landmarks: np.ndarray, batch_size: int = 16) -> list[np.ndarray]:
    """What ``avatar.render`` gives for each of landmarks [n, 68, 2], run ``batch_size`` frames per generator call
    (G is per-sample: instance norm and AdaIN with the same ψ for every frame)."""

    from talkinghead.inference import draw_landmarks

    size = avatar.config.model.image_size
    images: list[np.ndarray] = []
    for start in range(0, len(landmarks), batch_size):
        chunk = landmarks[start:start + batch_size]
        images.extend(avatar.generate(np.stack([draw_landmarks(points, size, avatar.config) for points in chunk])))
    return images


def _fid_features(ctx: _Context, key: str, real: np.ndarray, outputs_by_shots: dict[int, dict]) -> None:
    if ctx.fid_network is None:
        return
    arrays = {"real": ctx.fid_network.features(list(real))}
    for shots, outputs in outputs_by_shots.items():
        for method, images in outputs.items():
            arrays[f"{method}|{shots}"] = ctx.fid_network.features(images)
    path = ctx.out / "cache" / "fid" / f"{_safe(key)}.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **{name.replace("|", "__T"): value for name, value in arrays.items()})


def _safe(key: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in key)


def _evaluate_video(ctx: _Context, split: VideoSplit, driver: VideoSplit | None, yaw: np.ndarray | None) -> list:
    from talkinghead.metrics.report import contact_sheet, save_png

    key, index = split.key, ctx.index
    needed = sorted(set(split.target_frames) | set(split.source_frames[max(ctx.shots)]))
    images, landmarks = load_frames(index, split.video_index, needed, ctx.size)
    position = {f: i for i, f in enumerate(needed)}
    targets = [position[f] for f in split.target_frames]
    gt_images, gt_landmarks = images[targets], landmarks[targets]
    gt_keys = [f"{key}/frame{f:06d}" for f in split.target_frames]
    cross = _cross_inputs(ctx, split, driver) if driver is not None else None
    records, outputs_by_shots = [], {}
    for shots in ctx.shots:
        chosen = [position[f] for f in split.source_frames[shots]]
        source_images, source_landmarks = images[chosen], landmarks[chosen]
        avatars = _avatars(ctx, _source_objects(source_images, source_landmarks, key, split.source_frames[shots]))
        outputs = _generate(ctx, avatars, source_images, source_landmarks, gt_landmarks)
        outputs_by_shots[shots] = outputs
        large_yaw = None
        if yaw is not None:
            source_yaw = yaw[list(split.source_frames[shots])]
            large_yaw = [bool(np.all(np.abs(yaw[f] - source_yaw) > LARGE_YAW_DEGREES)) for f in split.target_frames]
        for method, frames in outputs.items():
            per_frame = [ctx.scorer.score(o, g, k) for o, g, k in zip(frames, gt_images, gt_keys, strict=True)]
            records.append({"video": key, "method": method, "shots": shots, "protocol": "self",
                            "frames": len(per_frame), "metrics": mean_metrics(per_frame)})
            if large_yaw is not None:
                subset = [v for v, keep in zip(per_frame, large_yaw, strict=True) if keep]
                records.append({"video": key, "method": method, "shots": shots, "protocol": "large_yaw",
                                "frames": len(subset),
                                "metrics": mean_metrics(subset, names=sorted(per_frame[0]))})
        rows = list(range(min(SHEET_ROWS, len(gt_images))))
        best = [source_images[_most_similar(source_landmarks, gt_landmarks[r])] for r in rows]
        save_png(ctx.out / "sheets" / f"{_safe(key)}_T{shots}.png",
                 contact_sheet(best, [gt_images[r] for r in rows], {m: [o[r] for r in rows]
                                                                    for m, o in outputs.items()}))
        if cross is not None:
            records.extend(_cross_records(ctx, split, driver, cross, shots, avatars, source_images,
                                          source_landmarks, split.source_frames[shots]))
    _fid_features(ctx, key, gt_images, outputs_by_shots)
    return records


def _most_similar(source_landmarks: np.ndarray, target: np.ndarray) -> int:
    from talkinghead.metrics.baselines import most_similar_source

    return most_similar_source(source_landmarks, target)


def _cross_inputs(ctx: _Context, split: VideoSplit, driver: VideoSplit) -> dict:
    """B's driving landmarks (its target frames) and, on synthetic data, the true "A with B's motion" frames."""
    index = ctx.index
    driver_landmarks = index.landmarks(driver.video_index)[list(driver.target_frames)].astype(np.float32)
    driver_landmarks = driver_landmarks * (ctx.size / index.image_size)
    truth = None
    if is_synthetic(index, split.video_index) and is_synthetic(index, driver.video_index):
        truth, _ = synthetic_cross_ground_truth(index, split.video_index, driver.video_index, driver.target_frames,
                                                ctx.size)
    return {"landmarks": driver_landmarks, "truth": truth}


def _cross_records(ctx: _Context, split: VideoSplit, driver: VideoSplit, cross: dict, shots: int, avatars: dict,
                   source_images: np.ndarray, source_landmarks: np.ndarray, source_frames: Sequence[int]) -> list:
    from talkinghead.landmarks.retarget import Retargeter, find_best_frame

    driver_landmarks = cross["landmarks"]
    reference = driver_landmarks[find_best_frame(driver_landmarks, source_landmarks[0])]
    identity_references = [(image, f"{split.key}/frame{f:06d}") for image, f in zip(source_images, source_frames,
                                                                                     strict=True)]
    records = []
    for mode in ctx.modes:
        retargeted = Retargeter(source_landmarks[0], reference, mode)(driver_landmarks)
        outputs = _generate(ctx, avatars, source_images, source_landmarks, retargeted)
        for method, frames in outputs.items():
            per_frame = []
            for i, output in enumerate(frames):
                values = ctx.scorer.score(output, target_landmarks=retargeted[i],
                                          identity_references=identity_references)
                if cross["truth"] is not None:
                    full = ctx.scorer.score(output, cross["truth"][i])
                    values.update(ssim=full["ssim"], psnr=full["psnr"], l1=full["l1"])
                per_frame.append(values)
            records.append({"video": split.key, "method": method, "shots": shots, "protocol": f"cross_{mode}",
                            "driver": driver.key, "frames": len(per_frame), "metrics": mean_metrics(per_frame)})
    return records


def _fid_set_metrics(out: Path, keys: Sequence[str], methods_shots: set, fid_network, reason: str) -> dict:
    from talkinghead.metrics.fid import frechet_distance_of_features

    if fid_network is None:
        return {ms: {"fid": {"value": None, "unavailable": reason}} for ms in methods_shots}
    stores = [np.load(out / "cache" / "fid" / f"{_safe(k)}.npz") for k in keys
              if (out / "cache" / "fid" / f"{_safe(k)}.npz").is_file()]
    if len(stores) < len(keys):
        reason = f"FID features missing for {len(keys) - len(stores)} video(s) evaluated without the FID network"
        return {ms: {"fid": {"value": None, "unavailable": reason}} for ms in methods_shots}
    real = np.concatenate([s["real"] for s in stores])
    result = {}
    for method, shots in methods_shots:
        fake = np.concatenate([s[f"{method}__T{shots}"] for s in stores])
        if len(real) < 2 or len(fake) < 2:
            result[(method, shots)] = {"fid": {"value": None, "unavailable": "FID needs at least 2 images per set"}}
        else:
            result[(method, shots)] = {"fid": {"value": frechet_distance_of_features(real, fake),
                                               "num_real": len(real), "num_fake": len(fake)}}
    return result


def _settings(checkpoint_path: Path, index, shots, targets, finetune_steps, finetune_epochs, seed, cross_identity,
              identity_name: str, keys: Sequence[str]) -> dict:
    stat = checkpoint_path.stat()
    return {"checkpoint": str(checkpoint_path), "checkpoint_bytes": stat.st_size, "dataset": str(index.root),
            "dataset_hash": index.content_hash, "shots": list(shots), "targets": targets,
            "finetune_steps": finetune_steps, "finetune_epochs": finetune_epochs, "seed": seed,
            "cross_identity": cross_identity, "identity_backend": identity_name, "videos": list(keys)}


def _check_resume(out: Path, settings: dict) -> None:
    path = out / "settings.json"
    if path.is_file():
        previous = json.loads(path.read_text())
        changed = [k for k in settings if previous.get(k) != settings[k]]
        if changed:
            raise ValueError(f"{out} holds an evaluation with other settings ({', '.join(changed)} differ); "
                             "use another --out folder, or delete it to start again")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(settings, indent=2) + "\n")


def evaluate(checkpoint: str | Path, data: str | Path, out: str | Path, *, shots: Sequence[int] = DEFAULT_SHOTS,
             targets: int = DEFAULT_TARGETS, finetune_steps: int | None = None, finetune_epochs: int | None = None,
             videos: int | None = None, per_identity: int | None = None, cross_identity: bool = False,
             allow_overlap: bool = False,
             fid_weights: str | Path | None = None, arcface_onnx: str | Path | None = None, seed: int = 0,
             device: str | None = None, content_loss: Callable | None = None, identity=None,
             detector: Detector | None = None, fid_network=None, progress: bool = True,
             finetune_overrides: Sequence[str] = ()) -> dict:
    """Run the paper's self-reenactment protocol (and optionally cross-identity) and write the reports.

    checkpoint: an inference export (or a run directory); data: a dataset folder of unseen people.
    finetune_steps / finetune_epochs: the fine-tuned rows' length (default: ``config.finetune.epochs``, the
    paper's 40 epochs); ``finetune_steps=0`` evaluates feed-forward only. videos: how many test videos (all
    eligible when None); per_identity: at most that many videos of one person. identity / detector /
    fid_network / content_loss: injected backends (tests,
    benchmarks); by default dlib descriptors (ArcFace with ``arcface_onnx``), the dlib landmark detector,
    FID Inception from ``fid_weights`` when loadable, and the training content loss. finetune_overrides:
    ``finetune.FIELD=VALUE`` items (see `TalkingHead.load`).

    Returns ``{"self_reenactment": report, "large_yaw": report | None, "cross_identity": {mode: report} | None,
    "identity_check": ..., "timing": ..., "files": ...}`` (reports as `metrics.report.build_report`).
    """
    import torch
    from tqdm import tqdm

    from talkinghead.checkpoint import load_checkpoint
    from talkinghead.data.index import load_index
    from talkinghead.inference import EXPORT_KIND, TalkingHead, resolve_export
    from talkinghead.metrics.identity import ArcFaceIdentity, CachedIdentity, DlibIdentity
    from talkinghead.metrics.report import VideoResults, build_report, write_report

    out = Path(out)
    shots = sorted({int(t) for t in shots})
    if finetune_steps is not None and finetune_steps < 0:
        raise ValueError(f"finetune_steps must be >= 0, got {finetune_steps}")
    checkpoint_path = resolve_export(checkpoint)
    metadata = load_checkpoint(checkpoint_path, expected_kind=EXPORT_KIND).metadata or {}
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    head = TalkingHead.load(checkpoint_path, device=device, landmarks=_no_detection,
                            finetune_overrides=finetune_overrides)
    config = head.config
    if finetune_steps is None and finetune_epochs is None:
        finetune_epochs = config.finetune.epochs
    index = load_index(data)
    chosen = pick_test_videos(index, videos, shots[-1] + targets, seed, per_identity=per_identity)
    identity_check = check_identity_overlap(index, chosen, metadata, allow_overlap)
    drivers = assign_drivers(chosen) if cross_identity else {}
    splits = {}
    for video in chosen:
        target_frames, source_frames = split_frames(video.key, video.num_frames, shots, targets, seed)
        splits[video.key] = VideoSplit(video.key, video.video_index, video.identity, target_frames, source_frames,
                                       drivers.get(video.key))
    if identity is None:
        identity = ArcFaceIdentity(arcface_onnx) if arcface_onnx else DlibIdentity()
    identity = identity if isinstance(identity, CachedIdentity) else CachedIdentity(identity)
    settings = _settings(checkpoint_path, index, shots, targets, finetune_steps, finetune_epochs, seed,
                         cross_identity, identity.name, list(splits))
    settings["finetune"] = dataclasses.asdict(config.finetune)
    _check_resume(out, settings)
    (out / "splits.json").write_text(json.dumps([s.to_json() for s in splits.values()], indent=1) + "\n")
    cache = out / "cache" / f"identity-{identity.name}.npz"
    cache.parent.mkdir(parents=True, exist_ok=True)
    if cache.is_file():
        identity.load(cache)
    fid_reason = ""
    if fid_network is None:
        from talkinghead.metrics.fid import FidInception, FidUnavailable

        try:
            fid_network = FidInception(fid_weights, device=device)
        except FidUnavailable as error:
            fid_reason = str(error)
            log.warning("FID unavailable: %s", error)
    ctx = _Context(head=head, index=index, out=out, shots=shots, size=config.model.image_size,
                   scorer=FrameScorer(identity, detector or default_detector()), finetune_steps=finetune_steps,
                   finetune_epochs=finetune_epochs, content_loss=content_loss, seed=seed,
                   cross_identity=cross_identity, modes=RETARGET_MODES, fid_network=fid_network)
    if ctx.finetune and content_loss is None:
        from talkinghead.inference import default_content_loss

        try:
            ctx.content_loss = default_content_loss(config, head.device)
        except ImportError as error:
            raise RuntimeError(f"fine-tuned rows need the training content loss, which cannot be built here "
                               f"({error}); pass --finetune-steps 0 to evaluate feed-forward only") from error
    results = VideoResults(out)
    started = time.perf_counter()
    done_before = 0
    bar = tqdm(list(splits.values()), unit="video", desc="evaluate", disable=not progress, dynamic_ncols=True)
    for split in bar:
        if results.done(split.key):
            done_before += 1
            continue
        bar.set_postfix_str(split.key[-24:])
        yaw = video_yaw(index, split.video_index)
        driver = splits[split.driver] if split.driver else None
        records = _evaluate_video(ctx, split, driver, yaw)
        results.save(split.key, records)
        temporary = cache.with_name(f"{cache.stem}.tmp.npz")
        identity.save(temporary)
        temporary.replace(cache)
    bar.close()
    elapsed = time.perf_counter() - started
    records = [r for r in results.records() if r["video"] in splits]
    timing = dict(ctx.timing, metrics_s=ctx.scorer.seconds, total_s=elapsed, videos_evaluated=len(splits) - done_before,
                  videos_resumed=done_before)
    generated = timing["frames_generated"]
    timing["generation_frames_per_s"] = generated / timing["generation_s"] if timing["generation_s"] else None
    common = {"checkpoint": str(checkpoint_path), "dataset": str(index.root), "shots": shots, "targets": targets,
              "videos": len(splits), "finetune_steps": finetune_steps, "finetune_epochs": finetune_epochs,
              "identity_backend": identity.name, "identity_check": identity_check, "seed": seed}
    files: dict[str, Any] = {}
    self_records = [r for r in records if r.get("protocol", "self") == "self"]
    fid = _fid_set_metrics(out, list(splits), {(r["method"], r["shots"]) for r in self_records}, fid_network,
                           fid_reason)
    report = build_report(self_records, set_metrics=fid, metadata={**common, "protocol": "self-reenactment"})
    files["self_reenactment"] = {k: str(v) for k, v in write_report(report, out).items()}
    large_yaw = None
    yaw_records = [r for r in records if r.get("protocol") == "large_yaw"]
    if yaw_records:
        large_yaw = build_report(yaw_records, metadata={
            **common, "protocol": f"self-reenactment, target frames whose yaw differs from every source frame's "
                                  f"by more than {LARGE_YAW_DEGREES:g} degrees",
            "frames": {f"{r['method']} ({r['shots']})": sum(x["frames"] for x in yaw_records
                                                              if x["method"] == r["method"]
                                                              and x["shots"] == r["shots"]) for r in yaw_records}})
        files["large_yaw"] = {k: str(v) for k, v in write_report(large_yaw, out / "large_yaw").items()}
    cross = None
    if cross_identity:
        cross = {}
        for mode in RETARGET_MODES:
            mine = [r for r in records if r.get("protocol") == f"cross_{mode}"]
            if not mine:
                continue
            synthetic = any("ssim" in r["metrics"] for r in mine)
            cross[mode] = build_report(mine, metadata={
                **common, "protocol": f"cross-identity reenactment, {mode} retargeting",
                "csim": "mean cosine to the identity's own source frames",
                "akd": "landmarks detected on the output vs the retargeted driver landmarks (motion following)",
                "full_reference": ("SSIM/PSNR/L1 against the renderer's true frame of A with B's motion"
                                   if synthetic else "not available (not a synthetic dataset)")})
            files[f"cross_{mode}"] = {k: str(v) for k, v in write_report(cross[mode], out / "cross_identity" /
                                                                         mode).items()}
    summary = {"self_reenactment": report, "large_yaw": large_yaw, "cross_identity": cross,
               "identity_check": identity_check, "timing": timing, "files": files, "out": str(out)}
    (out / "evaluation.json").write_text(json.dumps(
        {"identity_check": identity_check, "timing": timing, "files": files, "settings": settings}, indent=2) + "\n")
    log.info("evaluation of %d videos written to %s (%.1f s)", len(splits), out, elapsed)
    return summary


def _no_detection(image: np.ndarray, previous: np.ndarray | None) -> np.ndarray | None:
    raise RuntimeError("evaluation personalizes from dataset frames with stored landmarks; nothing should detect")


def format_summary(summary: dict) -> str:
    """A short text for the command line: the Table-1 markdown of each report and where the files are."""
    from talkinghead.metrics.report import markdown_table

    parts = ["Self-reenactment", markdown_table(summary["self_reenactment"])]
    if summary.get("large_yaw"):
        parts += [f"Large yaw (> {LARGE_YAW_DEGREES:g} degrees from every source frame)",
                  markdown_table(summary["large_yaw"])]
    for mode, report in (summary.get("cross_identity") or {}).items():
        parts += [f"Cross-identity ({mode})", markdown_table(report)]
    timing = summary["timing"]
    rate = timing.get("generation_frames_per_s")
    rate_text = f"{rate:.1f} frames/s" if rate else "n/a"
    parts.append(f"{timing['videos_evaluated']} videos evaluated, {timing['videos_resumed']} resumed; "
                 f"generation {rate_text}, metrics {timing['metrics_s']:.1f} s; "
                 f"reports in {summary['out']}")
    return "\n".join(parts)


__all__ = ["IdentityOverlapError", "VideoSplit", "assign_drivers", "check_identity_overlap", "dataset_identity_record",
           "evaluate", "format_summary", "load_frames", "pick_test_videos", "split_frames",
           "synthetic_cross_ground_truth", "video_yaw"]
