"""Head yaw from 68 iBUG landmarks: a rigid generic 3D face fitted with ``cv2.solvePnP``.

The evaluation's large-yaw split (target frames whose yaw differs from every source frame's by more than 20°)
needs a yaw per stored frame. Real clips carry none, so `prepare` estimates it from the tracked landmarks and
writes it to each video's ``meta.json`` ("yaw"); `evaluate` estimates it the same way for datasets prepared before.

The generic face is the synthetic heads' neutral landmark template with every shape factor at its mean (head units:
x right, y down, z toward the camera; `talkinghead.data.synthetic.geometry`). Only points that stay put when the
face speaks or turns are fitted (`FITTED_POINTS`): eye corners, nose bridge and base, mouth corners and chin tip.
The jaw outline is left out: on a turned real face dlib puts it on the silhouette, which is not a fixed 3D point.

Convention, as in the synthetic motion: degrees, positive yaw turns the face toward image right (the subject's
left); pose = Rz(roll) · Rx(pitch) · Ry(yaw) in head coordinates, so yaw = atan2(-R[2,0], R[2,2]).

Accuracy (tests/test_pose.py). Synthetic heads are built from the very template fitted here, so their few degrees of
error (yaw ±40°, pitch and roll ±12°) only show the fit converges. The checks that are not circular:

* a face defined from published adult anthropometry instead (`tests/test_pose.py`, deeper eye corners and mouth
  corners than the template), in perspective with landmark noise: mean error 3.4°, 95th percentile 7.6°; the
  estimate reads 1.11x the true yaw. The scale follows the depth of the face: 0.93x for a face 30% shallower,
  1.27x for one 30% deeper. A generic face cannot know a person's depth, so expect ±10-25% on yaw magnitudes.
* real annotated faces (50, yaw about -55° to +52°): the estimate correlates 0.96 with `contour_asymmetry`, a 2D
  index that reads the jaw outline this fit leaves out, and agrees with it in sign on every face turned over 5°.
* real clips tracked by dlib (8 clips, 519 frames), against the yaw of MediaPipe's 3D face mesh: mean |difference|
  2.1°, 95th percentile 5.8°, correlation 0.98, this estimate 0.80x the mesh's; but the mesh reads 1.24x the truth
  on rendered heads, so that slope is mostly the mesh's (`benchmarks/cases/yaw_agreement.py`).

Mirroring a face negates its yaw. The split's 20° threshold needs no more than the above, with pairs of frames
near 20° apart decided either way.
"""

from __future__ import annotations

import math
from dataclasses import replace
from functools import lru_cache

import numpy as np

FITTED_POINTS = np.array([8, 27, 28, 29, 30, 31, 33, 35, 36, 39, 42, 45, 48, 54])
"""Landmarks used for the fit: chin tip, nose bridge 27-30, nostrils 31/33/35, eye corners 36/39/42/45, mouth
corners 48/54."""

FOCAL_PER_WIDTH = 2.0
"""Assumed focal length in image widths (a ~28° field of view over the crop): perspective is mild at face crops,
and the yaw estimate barely depends on it."""


@lru_cache(maxsize=1)
def generic_face() -> np.ndarray:
    """[68, 3] float64 neutral landmarks of an average synthetic head (every shape factor 1, brows at 0)."""
    from talkinghead.data.synthetic.geometry import _landmark_template
    from talkinghead.data.synthetic.identity import Identity

    mean = replace(Identity.sample(0), head_width=1.0, jaw_width=1.0, chin_width=1.0, face_length=1.0,
                   eye_spacing=1.0, eye_size=1.0, nose_length=1.0, nose_width=1.0, lip_width=1.0,
                   lip_thickness=1.0, brow_height=0.0)
    return _landmark_template(mean)


def estimate_yaw(points: np.ndarray, image_size: tuple[int, int] | int) -> np.ndarray | float:
    """Head yaw in degrees of landmarks [68, 2] (a float) or [T, 68, 2] (an array [T]) in an image of
    ``image_size`` (width, height) or a square side. Raises ValueError on a wrong shape or non-finite points."""
    points = np.asarray(points, dtype=np.float64)
    if points.ndim < 2 or points.shape[-2:] != (68, 2):
        raise ValueError(f"estimate_yaw needs landmarks [68, 2] or [T, 68, 2], got {points.shape}")
    if not np.isfinite(points).all():
        raise ValueError("estimate_yaw: the landmarks hold NaN or infinite values")
    width, height = (image_size, image_size) if isinstance(image_size, (int, np.integer)) else image_size
    single = points.ndim == 2
    model = generic_face()[FITTED_POINTS] * np.array([1.0, 1.0, -1.0])  # OpenCV camera frame: z away from camera
    focal = FOCAL_PER_WIDTH * width
    camera = np.array([[focal, 0.0, width / 2], [0.0, focal, height / 2], [0.0, 0.0, 1.0]])
    yaws = np.array([_fit_yaw(p, model, camera) for p in points.reshape(-1, 68, 2)])
    return float(yaws[0]) if single else yaws.reshape(points.shape[:-2])


def _fit_yaw(points: np.ndarray, model: np.ndarray, camera: np.ndarray) -> float:
    """Yaw of one face [68, 2] fitted to ``model`` (the fitted points in OpenCV's camera frame) through ``camera``."""
    import cv2

    focal = camera[0, 0]
    image = points[FITTED_POINTS].astype(np.float64)
    # Start in front of the camera, facing it, at the distance the face's size implies; then refine.
    spread = float(np.linalg.norm(image - image.mean(0), axis=1).mean())
    model_spread = float(np.linalg.norm(model[:, :2] - model[:, :2].mean(0), axis=1).mean())
    distance = focal * model_spread / max(spread, 1e-6)
    centre = (image.mean(0) - camera[:2, 2]) * distance / focal
    rvec = np.zeros((3, 1))
    tvec = np.array([[centre[0]], [centre[1]], [distance]])
    ok, rvec, tvec = cv2.solvePnP(model, image, camera, None, rvec, tvec, useExtrinsicGuess=True,
                                  flags=cv2.SOLVEPNP_ITERATIVE)
    if not ok:
        raise ValueError("estimate_yaw: solvePnP found no pose for these landmarks")
    rotation_cv, _ = cv2.Rodrigues(rvec)
    flip = np.diag([1.0, 1.0, -1.0])
    rotation = flip @ rotation_cv @ flip  # back to head coordinates (z toward the camera)
    return math.degrees(math.atan2(-rotation[2, 0], rotation[2, 2]))


def contour_asymmetry(points: np.ndarray) -> np.ndarray | float:
    """Where the nose sits between the two sides of the face outline: 0 on a frontal face, growing with yaw toward
    ±1 (same sign as `estimate_yaw`), for landmarks [68, 2] (a float) or [..., 68, 2].

    An independent check on `estimate_yaw`, not a replacement: it uses no 3D face, and reads the jaw outline (points
    1-3 and 13-15, roughly at the nose's height), which the fit leaves out, against the nose bridge and tip 27-30.
    Roll is removed first (the eyes' centres made level). It is a unitless index, not degrees: how it maps to degrees
    depends on the head's depth and on where dlib puts the outline on a turned face.
    """
    points = np.asarray(points, dtype=np.float64)
    if points.ndim < 2 or points.shape[-2:] != (68, 2):
        raise ValueError(f"contour_asymmetry needs landmarks [68, 2] or [..., 68, 2], got {points.shape}")
    across = points[..., 42:48, :].mean(axis=-2) - points[..., 36:42, :].mean(axis=-2)
    across /= np.linalg.norm(across, axis=-1, keepdims=True)
    x = (points * across[..., None, :]).sum(axis=-1)  # coordinate along the eye line: roll removed
    left, right = x[..., [1, 2, 3]], x[..., [15, 14, 13]]
    middle = ((left + right) / 2).mean(axis=-1)
    half_width = ((right - left) / 2).mean(axis=-1)
    index = (x[..., 27:31].mean(axis=-1) - middle) / half_width
    return float(index) if points.ndim == 2 else index
