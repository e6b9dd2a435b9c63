"""A head rotation for tests that pose 3D face points: Rz(roll) · Rx(pitch) · Ry(yaw), degrees, in
`talkinghead.landmarks.pose`'s head convention (yaw = atan2(-R[2,0], R[2,2]))."""

from __future__ import annotations

import math

import numpy as np


def rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    y, p, r = (math.radians(v) for v in (yaw, pitch, roll))
    ry = np.array([[math.cos(y), 0, math.sin(y)], [0, 1, 0], [-math.sin(y), 0, math.cos(y)]])
    rx = np.array([[1, 0, 0], [0, math.cos(p), -math.sin(p)], [0, math.sin(p), math.cos(p)]])
    rz = np.array([[math.cos(r), -math.sin(r), 0], [math.sin(r), math.cos(r), 0], [0, 0, 1]])
    return rz @ rx @ ry
