"""Personalization sources are cropped with exactly the training data's crop settings (scale and lift)."""

from __future__ import annotations

import dataclasses

import numpy as np

from _inference_helpers import face, tiny_networks
from talkinghead.inference import TalkingHead
from talkinghead.landmarks.crop import crop_box


def test_sources_are_cropped_with_the_configured_scale_and_lift():
    points = face(centre=(128, 130), scale=40)
    image = np.zeros((256, 256, 3), np.uint8)
    config, embedder, generator, discriminator = tiny_networks()
    boxes = []
    for lift in (0.0, 0.3):
        data = dataclasses.replace(config.data, crop_lift=lift)
        head = TalkingHead(embedder, generator, discriminator, dataclasses.replace(config, data=data),
                           landmarks=lambda image, previous: points.copy())
        (source,) = head.prepare([image])
        left, top, side = source.box
        expected = crop_box(points, scale=data.crop_scale, lift=lift)
        # crop_image cuts the box at whole pixels
        assert np.allclose((left, top, side), (expected.left, expected.top, expected.size), atol=0.5)
        boxes.append(top)
    assert boxes[0] != boxes[1]
