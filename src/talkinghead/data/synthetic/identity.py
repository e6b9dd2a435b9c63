"""A synthetic person: face shape, hair, clothes and colours, sampled from a seed (`Identity`)."""

from __future__ import annotations

import colorsys
import logging
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)

MIN_SIZE = 32
MAX_SIZE = 512

MOUTH_INTERIOR = (92, 22, 34)  # RGB of the open mouth's interior (tests look for it)
SCLERA = (236, 234, 228)
PUPIL = (12, 10, 10)
TEETH = (240, 238, 226)

HAIR_STYLES = ("short", "crew", "long", "bob", "bald", "bun", "curly", "fringe")
BACKGROUND_STYLES = ("gradient", "wall", "bokeh", "window")


RGB = tuple[int, int, int]

_SKIN_TONES = np.array(
    [(255, 224, 198), (243, 200, 168), (228, 178, 140), (205, 148, 108), (170, 114, 78), (128, 84, 56), (88, 58, 40)],
    dtype=np.float64,
)
_HAIR_COLOURS = np.array(
    [(22, 18, 16), (48, 32, 24), (92, 60, 38), (140, 98, 58), (200, 160, 96), (232, 206, 150), (150, 58, 28),
     (150, 146, 142), (222, 220, 214), (52, 60, 130), (176, 70, 120)],
    dtype=np.float64,
)
_HAIR_WEIGHTS = np.array([6, 8, 7, 4, 3, 2, 2, 2, 1, 0.4, 0.4])
_EYE_COLOURS = np.array(
    [(70, 42, 24), (40, 26, 18), (70, 110, 160), (80, 120, 70), (120, 96, 50), (110, 120, 130)], dtype=np.float64
)


def _clip_rgb(colour: np.ndarray | tuple) -> RGB:
    c = np.clip(np.round(np.asarray(colour, dtype=np.float64)), 0, 255).astype(int)
    return int(c[0]), int(c[1]), int(c[2])


def _mix(a: RGB | np.ndarray, b: RGB | np.ndarray, t: float) -> RGB:
    return _clip_rgb((1.0 - t) * np.asarray(a, dtype=np.float64) + t * np.asarray(b, dtype=np.float64))


def _shade(c: RGB, k: float) -> RGB:
    return _clip_rgb(np.asarray(c, dtype=np.float64) * k)


def _hsv(h: float, s: float, v: float) -> RGB:
    r, g, b = colorsys.hsv_to_rgb(h % 1.0, s, v)
    return _clip_rgb((255 * r, 255 * g, 255 * b))


@dataclass(frozen=True)
class Identity:
    """One synthetic person: face shape, appearance and background. Sample with `Identity.sample(seed)`.

    Shape parameters are multiplicative factors around 1 (head units); colours are RGB tuples.
    """

    seed: int
    # face shape
    head_width: float
    jaw_width: float
    chin_width: float
    face_length: float
    eye_spacing: float
    eye_size: float
    nose_length: float
    nose_width: float
    lip_width: float
    lip_thickness: float
    brow_thickness: float
    brow_height: float
    ear_size: float
    neck_width: float
    shoulder_width: float
    # appearance
    skin: RGB
    lips: RGB
    eye_colour: RGB
    hair_style: str
    hair_colour: RGB
    hair_volume: float
    hairline: float
    brow_colour: RGB
    beard: str  # "none", "stubble", "full", "goatee", "moustache"
    glasses: str  # "none", "round", "square"
    glasses_colour: RGB
    clothing: RGB
    neckline: str  # "crew", "v", "collar"
    blush: float
    background_style: str
    background: tuple[RGB, RGB]

    @classmethod
    def sample(cls, seed: int) -> Identity:
        """A random person, deterministic from `seed` (any non-negative int)."""
        if seed < 0:
            raise ValueError(f"Identity.sample: seed must be >= 0, got {seed}")
        rng = np.random.default_rng([int(seed), 0x1D])

        def u(lo: float, hi: float) -> float:
            return float(rng.uniform(lo, hi))

        tone = u(0, len(_SKIN_TONES) - 1)
        i = int(tone)
        j = min(i + 1, len(_SKIN_TONES) - 1)
        skin = (1 - (tone - i)) * _SKIN_TONES[i] + (tone - i) * _SKIN_TONES[j]
        skin = skin * u(0.94, 1.04) + rng.normal(0, 4, 3)
        skin_rgb = _clip_rgb(skin)
        lips = _mix(skin_rgb, (170, 60, 70), u(0.25, 0.5))
        lips = _shade(lips, 0.95)

        hair_style = str(rng.choice(HAIR_STYLES, p=np.array([5, 2, 4, 3, 1, 2, 2, 3]) / 22))
        hair = _HAIR_COLOURS[rng.choice(len(_HAIR_COLOURS), p=_HAIR_WEIGHTS / _HAIR_WEIGHTS.sum())]
        hair_rgb = _clip_rgb(hair * u(0.85, 1.15))
        brow = _mix(hair_rgb, (30, 22, 18), 0.35) if hair_style != "bald" else _shade(skin_rgb, 0.45)

        eye = _EYE_COLOURS[rng.integers(len(_EYE_COLOURS))] * u(0.85, 1.15)

        beard = "none"
        if rng.uniform() < 0.35:
            beard = str(rng.choice(["stubble", "full", "goatee", "moustache"], p=[0.35, 0.3, 0.2, 0.15]))
        glasses = str(rng.choice(["none", "round", "square"], p=[0.7, 0.15, 0.15]))
        glasses_colour = _clip_rgb(
            [(20, 20, 22), (110, 70, 40), (170, 150, 90), (60, 60, 140)][rng.integers(4)]
        )

        clothing = _hsv(u(0, 1), u(0.15, 0.8), u(0.2, 0.9))
        neckline = str(rng.choice(["crew", "v", "collar"]))

        bg_style = str(rng.choice(BACKGROUND_STYLES))
        h = u(0, 1)
        bg1 = _hsv(h, u(0.05, 0.45), u(0.35, 0.95))
        bg2 = _hsv(h + u(-0.15, 0.15), u(0.05, 0.5), u(0.2, 0.9))

        return cls(
            seed=int(seed),
            head_width=u(0.93, 1.07),
            jaw_width=u(0.82, 1.12),
            chin_width=u(0.8, 1.25),
            face_length=u(0.9, 1.1),
            eye_spacing=u(0.9, 1.1),
            eye_size=u(0.85, 1.2),
            nose_length=u(0.85, 1.2),
            nose_width=u(0.8, 1.3),
            lip_width=u(0.85, 1.15),
            lip_thickness=u(0.7, 1.4),
            brow_thickness=u(0.7, 1.5),
            brow_height=u(-0.04, 0.04),
            ear_size=u(0.85, 1.2),
            neck_width=u(0.85, 1.15),
            shoulder_width=u(0.9, 1.12),
            skin=skin_rgb,
            lips=lips,
            eye_colour=_clip_rgb(eye),
            hair_style=hair_style,
            hair_colour=hair_rgb,
            hair_volume=u(0.95, 1.1),
            hairline=u(-0.68, -0.5),
            brow_colour=brow,
            beard=beard,
            glasses=glasses,
            glasses_colour=glasses_colour,
            clothing=clothing,
            neckline=neckline,
            blush=u(0.0, 0.12),
            background_style=bg_style,
            background=(bg1, bg2),
        )


