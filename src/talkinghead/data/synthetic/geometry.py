"""3D geometry of an identity (landmark template, expressions, head parts) and its projection into a frame."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from talkinghead.data.synthetic.identity import MAX_SIZE, MIN_SIZE, Identity, _mix, _shade
from talkinghead.data.synthetic.motion import FramePose

log = logging.getLogger(__name__)

_PIVOT = np.array([0.0, 0.85, -0.25])  # the head turns about the top of the neck
_CRANIUM_CENTRE = np.array([0.0, -0.15, -0.08])
_FOCAL = 7.0  # head units from the camera to the head origin: mild perspective
_SCALE = 0.27  # head units -> fraction of the image size
_EYE_LEVEL = 0.42  # fraction of the image height where the eyes sit (y = 0)



def _cranium_z(ident: Identity, x: np.ndarray, y: np.ndarray, front: bool = True) -> np.ndarray:
    """z of the cranium ellipsoid's front (or back) surface at (x, y); 0 beyond its outline."""
    ax, ay, az = 0.84 * ident.head_width, 0.97, 0.98
    r = 1 - (x / ax) ** 2 - ((y - _CRANIUM_CENTRE[1]) / ay) ** 2
    depth = az * np.sqrt(np.clip(r, 0.0, None))
    return _CRANIUM_CENTRE[2] + (depth if front else -depth)


def _face_z(x: np.ndarray, half_width: float = 0.86) -> np.ndarray:
    """z of the front of the face (a cylinder-like surface) at horizontal position x."""
    return 0.9 * np.sqrt(np.clip(1 - (x / half_width) ** 2, 0.03, None)) - 0.02


@dataclass(frozen=True)
class _Geometry:
    """Precomputed 3D geometry of one identity (head frame unless said otherwise)."""

    landmarks: np.ndarray  # [68, 3] neutral
    basis: np.ndarray  # [E, 68, 3] expression displacements (see _EXPRESSIONS)
    extra: np.ndarray  # [M, 3] non-landmark head points, slices in `parts`
    parts: dict  # name -> slice into extra
    body: np.ndarray  # [K, 2] torso outline in body frame
    skin_layers: tuple  # colours of the shading bands, darkest first
    hair_layers: tuple
    cloth_layers: tuple


_EXPRESSIONS = ("mouth_open", "smile", "blink_right", "blink_left", "brow_raise")


def _landmark_template(ident: Identity) -> np.ndarray:
    """Neutral 68 iBUG landmarks [68, 3] shaped by the identity."""
    p = np.zeros((68, 3))
    # jaw 0..16, from the subject's right ear (image left) around the chin
    half = np.array(
        [(-0.80, 0.00), (-0.795, 0.17), (-0.775, 0.34), (-0.735, 0.50), (-0.665, 0.655), (-0.56, 0.79),
         (-0.425, 0.905), (-0.235, 0.99), (0.0, 1.03)]
    )
    k = np.arange(9) / 8.0
    jaw_scale = 1 + (ident.jaw_width - 1) * np.clip((k - 0.2) / 0.5, 0, 1)  # widens the lower jaw
    jaw_scale = jaw_scale * (1 + (ident.chin_width - 1) * np.clip((k - 0.6) / 0.3, 0, 1) * 0.6)
    hx = half[:, 0] * ident.head_width * jaw_scale
    hy = np.where(half[:, 1] > 0.3, 0.3 + (half[:, 1] - 0.3) * ident.face_length, half[:, 1])
    hz = 0.1 + 0.62 * k**1.6
    p[0:9] = np.stack([hx, hy, hz], 1)
    p[9:17] = p[7::-1] * np.array([-1, 1, 1])

    # brows 17..21 (right), 22..26 (left), outer to inner on the right, inner to outer on the left
    bx = np.array([-0.70, -0.56, -0.41, -0.27, -0.13]) * ident.eye_spacing ** 0.5
    by = np.array([-0.17, -0.245, -0.27, -0.255, -0.205]) + ident.brow_height
    p[17:22] = np.stack([bx, by, _face_z(bx) + 0.06], 1)
    p[22:27] = p[21:16:-1] * np.array([-1, 1, 1])

    # nose: bridge 27..30 (top to tip), nostrils 31..35 (image left to right)
    nl = ident.nose_length
    p[27:31] = [(0, -0.12, 0.93), (0, 0.03 * nl, 0.99), (0, 0.17 * nl, 1.07), (0, 0.31 * nl, 1.17)]
    nx = np.array([-0.15, -0.075, 0, 0.075, 0.15]) * ident.nose_width
    ny = np.array([0.375, 0.395, 0.41, 0.395, 0.375]) * nl
    p[31:36] = np.stack([nx, ny, np.array([0.95, 1.0, 1.05, 1.0, 0.95])], 1)

    # eyes: 36 outer, 37 38 upper lid, 39 inner, 40 41 lower lid (right eye); the left eye mirrors it
    cx = -0.33 * ident.eye_spacing
    ex = np.array([-0.15, -0.065, 0.05, 0.135, 0.05, -0.065]) * ident.eye_size
    ey = np.array([0.012, -0.072, -0.074, 0.01, 0.045, 0.045]) * ident.eye_size
    xs = cx + ex
    p[36:42] = np.stack([xs, ey, _face_z(xs) - 0.02], 1)
    right = p[36:42] * np.array([-1, 1, 1])
    p[42:48] = right[[3, 2, 1, 0, 5, 4]]

    # mouth: outer 48..59 from the right corner along the upper lip, inner 60..67
    mw, mt = ident.lip_width, ident.lip_thickness
    my = 0.66 * (0.3 + (0.66 - 0.3) * ident.face_length) / 0.66
    ox = np.array([-0.25, -0.16, -0.07, 0.0, 0.07, 0.16, 0.25, 0.16, 0.07, 0.0, -0.07, -0.16]) * mw
    oy = np.array([0.0, -0.05, -0.075, -0.062, -0.075, -0.05, 0.0, 0.065, 0.095, 0.10, 0.095, 0.065])
    oy = np.where(oy < 0, oy * mt, oy * (0.5 + 0.5 * mt))
    p[48:60] = np.stack([ox, my + oy, _face_z(ox) + 0.1], 1)
    ix = np.array([-0.2, -0.08, 0.0, 0.08, 0.2, 0.08, 0.0, -0.08]) * mw
    iy = np.array([0.0, -0.006, -0.004, -0.006, 0.0, 0.006, 0.004, 0.006])
    p[60:68] = np.stack([ix, my + iy, _face_z(ix) + 0.08], 1)
    return p


def _expression_basis(ident: Identity, p: np.ndarray) -> np.ndarray:
    """Displacements [len(_EXPRESSIONS), 68, 3] added to the neutral landmarks, linear in each coefficient."""
    b = np.zeros((len(_EXPRESSIONS), 68, 3))
    d = 0.26 * ident.face_length  # full jaw drop
    # mouth_open: the jaw, chin and lower lip drop; the corners follow part way and come in
    mo = b[0]
    for i, w in zip(range(3, 14), (0.05, 0.15, 0.4, 0.65, 0.85, 0.95, 0.85, 0.65, 0.4, 0.15, 0.05), strict=True):
        mo[i, 1] = w * d
    mo[[55, 59], 1] = 0.78 * d
    mo[[56, 58], 1] = 0.94 * d
    mo[57, 1] = d
    mo[[65, 67], 1] = 0.86 * d
    mo[66, 1] = 0.92 * d
    mo[[61, 62, 63], 1] = -0.04 * d
    mo[[49, 50, 51, 52, 53], 1] = -0.03 * d
    mo[[48, 60, 64, 54], 1] = 0.4 * d
    mo[[48, 60], 0] = 0.1 * d
    mo[[54, 64], 0] = -0.1 * d
    # smile: corners out and up, the lips stretch, the lower lids rise
    sm = b[1]
    sm[[48, 60], 0], sm[[54, 64], 0] = -0.05, 0.05
    sm[[48, 54], 1] = sm[[60, 64], 1] = -0.055
    sm[[49, 59, 61, 67], 0], sm[[53, 55, 63, 65], 0] = -0.02, 0.02
    sm[[49, 53, 59, 55], 1] = -0.025
    sm[[61, 63, 65, 67], 1] = -0.015
    sm[[40, 41, 46, 47], 1] = -0.01
    # blinks: the upper lid comes down onto the lower lid
    for k, (upper, lower) in ((2, ((37, 41), (38, 40))), (3, ((43, 47), (44, 46)))):
        for u_i, l_i in (upper, lower):
            b[k, u_i, 1] = p[l_i, 1] - p[u_i, 1] - 0.004
    # brow raise: brows up (inner ends a little more), the upper lids open slightly
    br = b[4]
    br[17:27, 1] = -0.075
    br[[20, 21, 22, 23], 1] = -0.09
    br[[37, 38, 43, 44], 1] = -0.008
    return b


def _ring(centre: np.ndarray, u: np.ndarray, v: np.ndarray, ru: float, rv: float, n: int,
          power: float = 1.0) -> np.ndarray:
    """n points of a (super-)ellipse in 3D with axes u*ru and v*rv around `centre`."""
    a = np.linspace(0, 2 * math.pi, n, endpoint=False)
    c, s = np.cos(a), np.sin(a)
    c = np.sign(c) * np.abs(c) ** power
    s = np.sign(s) * np.abs(s) ** power
    return centre + np.outer(c * ru, u) + np.outer(s * rv, v)


def _sphere_points(n: int) -> np.ndarray:
    """n roughly uniform unit vectors (Fibonacci sphere)."""
    i = np.arange(n) + 0.5
    phi = np.arccos(1 - 2 * i / n)
    theta = math.pi * (1 + 5**0.5) * i
    return np.stack([np.cos(theta) * np.sin(phi), np.cos(phi), np.sin(theta) * np.sin(phi)], 1)


@lru_cache(maxsize=1024)
def _geometry(ident: Identity) -> _Geometry:
    p = _landmark_template(ident)
    basis = _expression_basis(ident, p)
    parts: dict[str, slice] = {}
    chunks: list[np.ndarray] = []

    def add(name: str, pts: np.ndarray) -> None:
        start = sum(len(c) for c in chunks)
        chunks.append(np.asarray(pts, dtype=np.float64).reshape(-1, 3))
        parts[name] = slice(start, start + len(chunks[-1]))

    hw = ident.head_width
    ax, ay, az = 0.84 * hw, 0.97, 0.98
    unit = _sphere_points(160)
    cranium = _CRANIUM_CENTRE + unit * np.array([ax, ay, az])

    # skin of the face: hairline arch, temples, the back of the jaw (visible when the head turns)
    hx = np.linspace(-0.8, 0.8, 11) * hw
    hl = ident.hairline if ident.hair_style not in ("bald",) else -0.95
    hy = hl + 0.42 * (hx / (0.8 * hw)) ** 2
    hairline = np.stack([hx, hy, _cranium_z(ident, hx, hy) + 0.01], 1)
    sides = np.array([(-0.8 * hw, -0.05, -0.25), (0.8 * hw, -0.05, -0.25), (-0.72 * hw, 0.42, -0.3),
                      (0.72 * hw, 0.42, -0.3), (-0.52 * hw, 0.72, -0.35), (0.52 * hw, 0.72, -0.35)])
    face_skin = np.concatenate([hairline, sides])
    if ident.hair_style == "bald":
        face_skin = np.concatenate([face_skin, cranium[cranium[:, 2] > -0.4]])
    add("face_skin", face_skin)
    add("hairline", hairline)

    # hair volume behind the face
    vol = ident.hair_volume
    style = ident.hair_style
    if style == "bald":
        hair = cranium[(cranium[:, 1] > -0.35) & (cranium[:, 1] < 0.05) & (cranium[:, 2] < 0.0)] * [1.04, 1, 1.04]
    else:
        scale = {"crew": 1.02, "curly": 1.22, "bob": 1.1, "long": 1.08}.get(style, 1.06) * vol
        cut = {"crew": -0.08, "short": -0.02, "fringe": -0.02, "bun": 0.0, "curly": 0.15, "bob": 0.75,
               "long": 0.9}[style]
        hair = _CRANIUM_CENTRE + unit * np.array([ax, ay, az]) * scale
        hair = hair[hair[:, 1] < cut + 0.2 * (hair[:, 2] < -0.2)]
        if style in ("long", "bob"):
            length = 1.9 if style == "long" else 0.85
            width = 0.98 * hw * vol
            drape = np.array([(s * width * f, length * g, zz) for s in (-1, 1) for f, g in ((1.05, 0.6), (1.0, 1.0))
                              for zz in (-0.1, -0.5)])
            hair = np.concatenate([hair, drape])
        if style == "bun":
            hair = np.concatenate([hair, _ring(np.array([0, -1.08, -0.45]), np.array([1.0, 0, 0]),
                                               np.array([0, 0.6, -0.8]), 0.33, 0.33, 12)])
    add("hair", hair)

    # hair strands (front of the hair volume): curves from the crown to the hairline, in 6 segments each
    if style not in ("bald", "crew"):
        crown = np.array([0.0, -0.95, -0.45])
        scale = {"curly": 1.2, "bob": 1.08, "long": 1.06}.get(style, 1.04) * vol
        strands = []
        for x in np.linspace(-0.7, 0.7, 7) * hw:
            y = hl + 0.42 * (x / (0.8 * hw)) ** 2
            end = np.array([x, y, _cranium_z(ident, np.array(x), np.array(y)).item()])
            for f in np.linspace(0, 1, 7):
                q = (1 - f) * crown + f * end - _CRANIUM_CENTRE
                q = q / np.linalg.norm(q / np.array([ax, ay, az]))  # back onto the ellipsoid
                strands.append(_CRANIUM_CENTRE + q * scale)
        add("strands", np.array(strands))

    # fringe (drawn over the forehead): a side-swept lock from the hairline
    if style == "fringe":
        fx = np.array([-0.8, -0.55, -0.2, 0.2, 0.55, 0.8, 0.62, 0.3, -0.1, -0.5, -0.78]) * hw
        fy = np.array([-0.2, -0.52, -0.62, -0.6, -0.45, -0.2, -0.3, -0.38, -0.42, -0.36, -0.16])
        fy = np.where(np.arange(11) <= 5, np.minimum(fy, hl + 0.42 * (fx / (0.8 * hw)) ** 2 - 0.02), fy)
        add("fringe", np.stack([fx, fy, _cranium_z(ident, fx, fy) + 0.03], 1))

    # ears: flat ovals on the sides, turned back a little
    for name, side in (("ear_right", -1.0), ("ear_left", 1.0)):
        centre = np.array([side * 0.86 * hw, 0.13, -0.12])
        add(name, _ring(centre, np.array([0.0, 1.0, 0.0]), np.array([side * 0.55, 0.0, -0.83]),
                        0.18 * ident.ear_size, 0.11 * ident.ear_size, 12))

    # neck top (moves with the head)
    nw = 0.46 * ident.neck_width
    add("neck_top", np.array([(-nw, 0.55, -0.3), (nw, 0.55, -0.3)]))

    # cheeks (blush) and the lit point of the face
    cheek_z = float(_face_z(np.array(0.47))) + 0.02
    add("cheeks", np.array([(-0.47, 0.38, cheek_z), (0.47, 0.38, cheek_z)]))
    add("light", np.array([(-0.12, 0.05, 0.95), (0.0, 0.1, 0.0)]))

    eye_r = p[36:42].mean(0)
    eye_l = p[42:48].mean(0)

    # beard: upper boundary over the cheeks and under the nose (the jaw part comes from the landmarks)
    if ident.beard in ("full", "stubble"):
        bx = np.array([0.78, 0.62, 0.36, 0.16, 0.0, -0.16, -0.36, -0.62, -0.78]) * hw
        by = np.array([0.12, 0.36, 0.47, 0.47, 0.46, 0.47, 0.47, 0.36, 0.12])
        add("beard", np.stack([bx, by, _face_z(bx) + 0.1], 1))
    if ident.beard in ("full", "moustache", "goatee"):
        mx = np.array([-0.28, -0.15, 0.0, 0.15, 0.28, 0.22, 0.0, -0.22]) * ident.lip_width
        my_ = p[51, 1]
        mys = np.array([0.02, -0.1, -0.11, -0.1, 0.02, -0.03, -0.05, -0.03]) + my_
        add("moustache", np.stack([mx, mys, _face_z(mx) + 0.13], 1))

    # glasses: a frame ring around each eye, slightly in front of the face
    if ident.glasses != "none":
        power = 1.0 if ident.glasses == "round" else 0.45
        for name, c in (("glasses_right", eye_r), ("glasses_left", eye_l)):
            centre = np.array([c[0] * 1.03, c[1] + 0.01, _face_z(np.array(c[0])) + 0.13])
            add(name, _ring(centre, np.array([1.0, 0, 0]), np.array([0, 1.0, 0]), 0.19, 0.135, 20, power))
        add("glasses_arms", np.array([(-0.84 * hw, -0.02, -0.05), (0.84 * hw, -0.02, -0.05)]))

    extra = np.concatenate(chunks)

    sw = 1.95 * ident.shoulder_width
    nb = 0.5 * ident.neck_width
    body = np.array([(-sw, 3.3), (-sw, 2.4), (-0.97 * sw, 2.12), (-0.88 * sw, 1.93), (-0.7 * sw, 1.8),
                     (-0.45 * sw, 1.7), (-nb - 0.12, 1.56), (nb + 0.12, 1.56), (0.45 * sw, 1.7), (0.7 * sw, 1.8),
                     (0.88 * sw, 1.93), (0.97 * sw, 2.12), (sw, 2.4), (sw, 3.3)])

    skin_layers = tuple(_shade(ident.skin, k) for k in (0.8, 0.87, 0.94, 1.0))
    hair_base = ident.hair_colour if style != "bald" else _shade(ident.skin, 0.9)
    hair_layers = (_shade(hair_base, 0.75), hair_base, _mix(hair_base, (255, 255, 255), 0.12))
    cloth_layers = (_shade(ident.clothing, 0.7), _shade(ident.clothing, 0.85), ident.clothing)
    return _Geometry(p, basis, extra, parts, body, skin_layers, hair_layers, cloth_layers)


# ----------------------------------------------------------------------------------------------------------------
# Projection
# ----------------------------------------------------------------------------------------------------------------


def _rotation(pose: FramePose) -> np.ndarray:
    """R = Rz(roll) @ Rx(pitch) @ Ry(yaw) in head coordinates (x right, y down, z toward the camera)."""
    y, p, r = (math.radians(v) for v in (pose.yaw, pose.pitch, pose.roll))
    cy, sy, cp, sp, cr, sr = math.cos(y), math.sin(y), math.cos(p), math.sin(p), math.cos(r), math.sin(r)
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rx = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
    rz = np.array([[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]])
    return rz @ rx @ ry


class _Camera:
    """Projects head-frame points of one frame to pixels (mild perspective) and body-frame points without rotation."""

    def __init__(self, pose: FramePose, size: int) -> None:
        self.rotation = _rotation(pose)
        self.pixels_per_unit = _SCALE * size * pose.scale
        self.cx = size * (0.5 + pose.tx)
        self.cy = size * (_EYE_LEVEL + pose.ty)
        self.body_shift = 0.12 * math.sin(math.radians(pose.yaw))

    def rotate(self, pts: np.ndarray) -> np.ndarray:
        return (pts - _PIVOT) @ self.rotation.T + _PIVOT

    def project(self, pts: np.ndarray) -> np.ndarray:
        """[N, 3] head-frame points -> [N, 2] pixels."""
        q = self.rotate(pts)
        k = self.pixels_per_unit * _FOCAL / (_FOCAL - q[:, 2:3])
        return np.stack([self.cx + k[:, 0] * q[:, 0], self.cy + k[:, 0] * q[:, 1]], 1)

    def project_body(self, pts: np.ndarray) -> np.ndarray:
        """[N, 2] body-frame points (not rotated with the head) -> [N, 2] pixels."""
        k = self.pixels_per_unit * _FOCAL / (_FOCAL + 0.3)
        return np.stack([self.cx + k * (pts[:, 0] + self.body_shift), self.cy + k * pts[:, 1]], 1)


def _landmarks_3d(geo: _Geometry, pose: FramePose) -> np.ndarray:
    coeffs = np.array([pose.mouth_open, pose.smile, pose.blink_right, pose.blink_left, pose.brow_raise])
    return geo.landmarks + np.tensordot(coeffs, geo.basis, axes=1)


def _check_size(size: int) -> None:
    if not isinstance(size, (int, np.integer)) or not MIN_SIZE <= size <= MAX_SIZE:
        raise ValueError(f"synthetic: size must be an int in [{MIN_SIZE}, {MAX_SIZE}], got {size!r}")


def frame_landmarks(identity: Identity, pose: FramePose, size: int) -> np.ndarray:
    """The 68 landmarks [68, 2] float32 of `identity` in `pose`, exactly as `render_frame` returns them."""
    _check_size(size)
    geo = _geometry(identity)
    return _Camera(pose, size).project(_landmarks_3d(geo, pose)).astype(np.float32)


