"""Frames of the test videos: stored frames at the model's size, their yaw, and on synthetic data the true frames of
person A performing person B's motion (the cross-identity ground truth)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


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


def video_yaw(index, video_index: int) -> np.ndarray:
    """Yaw in degrees per stored frame [T]: a synthetic clip's true motion; else ``meta.json`` "yaw" (written by
    `prepare`); else estimated now from the stored landmarks, as `prepare` does (datasets prepared before it
    recorded yaw)."""
    meta = index.meta(video_index)
    if "motion_seed" in meta:
        from talkinghead.data.synthetic import Motion

        source_frames = meta.get("source_frames") or list(range(index.videos[video_index].num_frames))
        motion = Motion.sample(int(meta["motion_seed"]), _rendered_frames(meta, len(source_frames)))
        return np.asarray(motion.yaw, dtype=np.float64)[np.asarray(source_frames)]
    if "yaw" in meta:
        return np.asarray(meta["yaw"], dtype=np.float64)
    from talkinghead.landmarks.pose import estimate_yaw

    return np.asarray(estimate_yaw(index.landmarks(video_index), index.image_size), dtype=np.float64)


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
