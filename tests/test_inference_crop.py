"""Personalization sources are cropped with exactly the training data's crop settings (scale and lift)."""

from __future__ import annotations

import dataclasses

import numpy as np

from talkinghead.config import preset
from talkinghead.landmarks.crop import crop_box, crop_face


def test_crop_face_uses_the_configured_scale_and_lift():
    points = np.stack([np.linspace(80, 160, 68), np.linspace(90, 170, 68)], 1).astype(np.float32)
    image = np.zeros((256, 256, 3), np.uint8)
    data = preset("tiny-64").data
    boxes = []
    for lift in (0.0, 0.3):
        config = dataclasses.replace(data, crop_lift=lift)
        _, _, (left, top, side) = crop_face(image, points, 64, config.crop_scale, config.crop_lift)
        expected = crop_box(points, scale=config.crop_scale, lift=lift)
        assert np.allclose((left, top, side), (expected.left, expected.top, expected.size), atol=1e-3)
        boxes.append(top)
    assert boxes[0] != boxes[1]
