"""One frame from an identity and a pose (`render_frame`, in named drawing steps), a video, a dataset clip."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import cv2
import numpy as np

from talkinghead.data.synthetic.drawing import (
    _SHIFT,
    _background,
    _bands,
    _disc,
    _draw_eye,
    _draw_mouth,
    _fill,
    _fix,
    _hull,
    _line,
)
from talkinghead.data.synthetic.geometry import _CRANIUM_CENTRE, _Camera, _check_size, _geometry, _landmarks_3d
from talkinghead.data.synthetic.identity import Identity, _mix, _shade
from talkinghead.data.synthetic.motion import FramePose, Motion

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Scene:
    """What every drawing step of one frame needs: the identity's geometry, the camera, the projected points."""

    ident: Identity
    pose: FramePose
    geo: object  # geometry._Geometry
    cam: _Camera
    pts: np.ndarray  # [68, 2] landmarks in pixels
    part: dict  # name -> [M, 2] projected non-landmark points
    unit: float  # pixels per head unit
    width: float  # line width reference in pixels

    def unpack(self) -> tuple:
        return self.geo, self.cam, self.pts, self.part, self.ident, self.unit, self.width


def _scene(identity: Identity, pose: FramePose, size: int) -> _Scene:
    """Project the identity's 3D points (landmarks and head parts) for this pose."""
    geo = _geometry(identity)
    cam = _Camera(pose, size)
    pts = cam.project(_landmarks_3d(geo, pose))
    ex = cam.project(geo.extra)
    part = {name: ex[s] for name, s in geo.parts.items()}
    return _Scene(identity, pose, geo, cam, pts, part, cam.pixels_per_unit, max(size / 128.0, 0.5))


def render_frame(identity: Identity, pose: FramePose, size: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """Render one frame: (image uint8 RGB [size, size, 3], landmarks float32 [68, 2] in its pixels).

    Back to front: background, body, hair behind the head, neck, hair on the head, ears and face, cheeks and
    beard, nose, eyes, brows, mouth, fringe and glasses."""
    _check_size(size)
    scene = _scene(identity, pose, size)
    img = _background(identity, size).copy()
    for draw in (_draw_body, _draw_hair_behind, _draw_neck, _draw_hair_on_head, _draw_ears_and_face,
                 _draw_cheeks_and_beard, _draw_nose, _draw_eyes, _draw_brows):
        draw(img, scene)
    _draw_mouth(img, identity, scene.pts, scene.unit, scene.width)
    _draw_fringe_and_glasses(img, scene)
    return img, scene.pts.astype(np.float32)


def _draw_body(img: np.ndarray, scene: _Scene) -> None:
    """The torso in clothing bands."""
    geo, cam, pts, part, ident, unit, width = scene.unpack()
    # body and neck
    body = cam.project_body(geo.body)
    _bands(img, body, body[[6, 7]].mean(0) + np.array([-0.15, 0.45]) * unit, geo.cloth_layers, (0.9, 0.75))


def _draw_hair_behind(img: np.ndarray, scene: _Scene) -> None:
    """Long hair falls behind the neck and shoulders."""
    geo, cam, pts, part, ident, unit, width = scene.unpack()
    if ident.hair_style in ("long", "bob", "curly"):
        hair_outline = _hull(part["hair"])
        _bands(img, hair_outline, hair_outline.mean(0) + np.array([-0.2, -0.4]) * unit, geo.hair_layers,
               (0.9, 0.6))


def _draw_neck(img: np.ndarray, scene: _Scene) -> None:
    """Neck, neckline (or collar) and the chin's shadow."""
    geo, cam, pts, part, ident, unit, width = scene.unpack()
    neck_top = part["neck_top"]
    nb = 0.5 * ident.neck_width
    neck_bottom = cam.project_body(np.array([(nb, 1.62), (-nb, 1.62)]))
    neck = np.concatenate([neck_top, neck_bottom])
    _fill(img, neck, geo.skin_layers[1])
    dip = {"crew": 0.12, "v": 0.45, "collar": 0.4}[ident.neckline]
    neckline = cam.project_body(np.array([(-nb - 0.12, 1.6), (-nb * 0.5, 1.6 + dip * 0.7), (0, 1.6 + dip),
                                          (nb * 0.5, 1.6 + dip * 0.7), (nb + 0.12, 1.6)]))
    _fill(img, neckline, geo.skin_layers[2])
    if ident.neckline == "collar":
        white = _mix(ident.clothing, (245, 245, 245), 0.8)
        for s in (-1, 1):
            _fill(img, cam.project_body(np.array([(s * (nb + 0.14), 1.56), (0, 1.6 + dip), (s * (nb + 0.35), 1.85)])),
                  white)
    else:
        _line(img, neckline, geo.cloth_layers[0], width * 1.5)
    # the chin's shadow on the neck
    _fill(img, np.concatenate([neck_top, cam.project(np.array([(0.3, 0.9, -0.2), (-0.3, 0.9, -0.2)]))]),
          geo.skin_layers[0])


def _draw_hair_on_head(img: np.ndarray, scene: _Scene) -> None:
    """Short hair styles over the cranium, and the visible strands."""
    geo, cam, pts, part, ident, unit, width = scene.unpack()
    if ident.hair_style not in ("long", "bob", "curly"):
        hair_outline = _hull(part["hair"])
        _bands(img, hair_outline, hair_outline.mean(0) + np.array([-0.2, -0.4]) * unit, geo.hair_layers,
               (0.9, 0.6))
    if "strands" in part:  # only the segments on the visible side of the hair volume
        s = geo.parts["strands"]
        facing = cam.rotate(geo.extra[s])[:, 2] - cam.rotate(_CRANIUM_CENTRE[None])[0, 2] > 0.1
        strand = part["strands"].reshape(7, 7, 2)
        visible = facing.reshape(7, 7)
        segments = [strand[i, j:j + 2] for i in range(7) for j in range(6) if visible[i, j] and visible[i, j + 1]]
        if segments:
            cv2.polylines(img, [_fix(q) for q in segments], False, _mix(geo.hair_layers[0], geo.hair_layers[1], 0.6),
                          max(1, int(width * 0.8)),
                          cv2.LINE_AA, _SHIFT)


def _draw_ears_and_face(img: np.ndarray, scene: _Scene) -> None:
    """Ears behind the face when turned away; the face in bands towards the light; ears in front."""
    geo, cam, pts, part, ident, unit, width = scene.unpack()
    # ears: behind the face when turned away, in front when turned towards the camera
    ears_hidden = ident.hair_style in ("long", "bob")
    front_ears = []
    for name, side in (("ear_right", -1.0), ("ear_left", 1.0)):
        if ears_hidden:
            continue
        normal_z = cam.rotation[2, 0] * side
        (front_ears if normal_z > 0.25 else []).append(name)
        if normal_z <= 0.25:
            _fill(img, part[name], geo.skin_layers[1])
    lit_centre = part["light"][0] + np.array([-0.05, -0.08]) * unit  # front of the face, light from the upper left
    # face skin with shading bands towards the lit front
    face_outline = _hull(np.concatenate([pts[0:17], part["face_skin"]]))
    _bands(img, face_outline, lit_centre, geo.skin_layers, (0.93, 0.8, 0.55))
    for name in front_ears:
        _fill(img, part[name], geo.skin_layers[2])
        c = part[name].mean(0)
        _fill(img, c + 0.55 * (part[name] - c), geo.skin_layers[0])


def _draw_cheeks_and_beard(img: np.ndarray, scene: _Scene) -> None:
    """Blush, beard, moustache and goatee."""
    geo, cam, pts, part, ident, unit, width = scene.unpack()
    # blush
    if ident.blush > 0.01:
        blush = _mix(geo.skin_layers[3], (220, 90, 90), ident.blush)
        for c in part["cheeks"]:
            _disc(img, c, 0.12 * unit, blush)

    # beard
    if "beard" in part:
        density = 0.85 if ident.beard == "full" else 0.35
        colour = _mix(ident.skin, ident.hair_colour if ident.hair_style != "bald" else (40, 30, 25), density)
        _fill(img, np.concatenate([pts[2:15], part["beard"]]), colour)
    if "moustache" in part:
        colour = _mix(ident.skin, ident.hair_colour if ident.hair_style != "bald" else (40, 30, 25), 0.85)
        _fill(img, part["moustache"], colour)
        if ident.beard == "goatee":
            _fill(img, np.concatenate([pts[[54, 55, 56, 57, 58, 59, 48]] + [0, 0.5], pts[[5, 6, 7, 8, 9, 10, 11]]]),
                  colour)


def _draw_nose(img: np.ndarray, scene: _Scene) -> None:
    """Shadow on the side away from the light, nostrils, tip highlight."""
    geo, cam, pts, part, ident, unit, width = scene.unpack()
    # nose: shadow on the side away from the light, nostrils, tip highlight
    nose_shadow = np.concatenate([pts[27:31], pts[[33, 34]], pts[[27]] + (pts[35] - pts[31]) * 0.2])
    _fill(img, nose_shadow, geo.skin_layers[1])
    _fill(img, pts[[30, 31, 32, 33, 34, 35]], geo.skin_layers[2])
    nostril = _shade(ident.skin, 0.45)
    nostril_r = 0.028 * unit
    _disc(img, pts[32] * 0.7 + pts[33] * 0.3 + np.array([0, -0.2]) * nostril_r, nostril_r, nostril)
    _disc(img, pts[34] * 0.7 + pts[33] * 0.3 + np.array([0, -0.2]) * nostril_r, nostril_r, nostril)
    _disc(img, pts[30] * 0.8 + pts[29] * 0.2, 0.035 * unit, _mix(ident.skin, (255, 255, 255), 0.25))


def _draw_eyes(img: np.ndarray, scene: _Scene) -> None:
    """Sclera, iris and pupil clipped to the lids; the gaze moves the iris within the eye."""
    geo, cam, pts, part, ident, unit, width = scene.unpack()
    # eyes: sclera, iris and pupil clipped to the lids; the gaze moves the iris within the eye
    eye_w3 = np.linalg.norm(geo.landmarks[39] - geo.landmarks[36]) * unit
    for lid_idx in (slice(36, 42), slice(42, 48)):
        lid = pts[lid_idx]
        foreshortening = float(np.clip(np.linalg.norm(lid[3] - lid[0]) / eye_w3, 0.3, 1.0))
        _draw_eye(img, ident, lid, (scene.pose.gaze_x, scene.pose.gaze_y), 0.085 * ident.eye_size * unit,
                  foreshortening, width)


def _draw_brows(img: np.ndarray, scene: _Scene) -> None:
    """Thick strokes, thinner at the outer end."""
    geo, cam, pts, part, ident, unit, width = scene.unpack()
    # brows: thick strokes, thinner at the outer end
    thick = 0.045 * ident.brow_thickness * unit
    for idx in (slice(17, 22), slice(22, 27)):
        b = pts[idx]
        prof = np.array([0.45, 0.8, 1.0, 1.0, 0.9]) if idx.start == 17 else np.array([0.9, 1.0, 1.0, 0.8, 0.45])
        up = b - np.array([0, 1.0]) * (prof * thick * 0.6)[:, None]
        down = b + np.array([0, 1.0]) * (prof * thick * 0.5)[:, None]
        _fill(img, np.concatenate([up, down[::-1]]), ident.brow_colour)


def _draw_fringe_and_glasses(img: np.ndarray, scene: _Scene) -> None:
    """A fringe over the forehead, then glasses on top of everything."""
    geo, cam, pts, part, ident, unit, width = scene.unpack()
    if "fringe" in part:
        _bands(img, part["fringe"], part["fringe"].mean(0) + np.array([-0.1, -0.1]) * unit, geo.hair_layers[1:],
               (0.7,))

    if ident.glasses != "none":
        gw = width * 1.1
        right, left = part["glasses_right"], part["glasses_left"]
        _line(img, right, ident.glasses_colour, gw, closed=True)
        _line(img, left, ident.glasses_colour, gw, closed=True)
        # ring point 0 is on the +x side, point 10 on the -x side: the bridge joins the inner sides
        bridge = np.stack([right[0], (right[0] + left[10]) * 0.5 + np.array([0, -0.03]) * unit, left[10]])
        _line(img, bridge, ident.glasses_colour, gw)
        arms = part["glasses_arms"]
        if cam.rotation[2, 0] < -0.15:  # face turned to image left: the right arm is visible
            _line(img, np.stack([right[10], arms[0]]), ident.glasses_colour, gw)
        if cam.rotation[2, 0] > 0.15:
            _line(img, np.stack([left[0], arms[1]]), ident.glasses_colour, gw)


def render_video(identity: Identity, motion: Motion, size: int = 128) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Render every frame of `motion` on `identity`.

    Returns (frames [T, size, size, 3] uint8 RGB, landmarks [T, 68, 2] float32, yaw [T] float32 in degrees).
    With `identity` = A and `motion` sampled for B, this is A performing B's motion (landmarks: B's motion on
    A's face shape).
    """
    _check_size(size)
    T = len(motion)
    frames = np.empty((T, size, size, 3), np.uint8)
    landmarks = np.empty((T, 68, 2), np.float32)
    for t in range(T):
        frames[t], landmarks[t] = render_frame(identity, motion.frame(t), size)
    return frames, landmarks, np.asarray(motion.yaw, np.float32).copy()



@dataclass(frozen=True)
class SyntheticVideo:
    """What the dataset writer needs to reproduce a synthetic clip: identity seed, motion seed, frame count.

    `motion_seed` may belong to another identity's clip: `SyntheticVideo(a, motion_seed_of_b, n)` is A
    performing B's motion.
    """

    identity_seed: int
    motion_seed: int
    num_frames: int

    @property
    def identity(self) -> Identity:
        return Identity.sample(self.identity_seed)

    @property
    def motion(self) -> Motion:
        return Motion.sample(self.motion_seed, self.num_frames)

    def render(self, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(frames [T,H,W,3] uint8, landmarks [T,68,2] float32, yaw [T] float32 in degrees)."""
        return render_video(self.identity, self.motion, size)


