"""Identity from the embedding (issue 25, item 4): the shipped model's synthesized mouth depends on ψ = P·ê.

The committed Mona Lisa (mouth closed, T = 1) is driven with her own landmarks, the lips parted: no source shows
the inside of her mouth, so the synthesis branch paints it (the mouth prior hands it those pixels). Rendering the
same frame with another person's ψ (a synthetic face of our renderer, feed-forward) must change the painted mouth
measurably; a model whose AdaIN coefficients do not reach the pixels (stop 23's: 0.05 grey levels in the mouth)
fails. The model card reports the same figure on the validation people's mouth-open targets
(`python -m talkinghead.evaluate.learned_parts --split mouth-open`, ``psi_swap_mouth_grey``).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from talkinghead.landmarks.geometry import open_mouth
from talkinghead.metrics.mouth import crop, mouth_box, mouth_openness

pytestmark = pytest.mark.usefixtures("one_thread")

MIN_MOUTH_CHANGE_GREY = 1.0
"""The smallest mean change (grey levels 0..255) in the mouth region a swap of ψ must make here: 40x what a model
without identity in its pixels gives (stop 23's shipped model: 0.024 here, 0.05 on validation); stop 24's gives
2.0 here. Issue 25's target (5 grey levels over the validation people's mouth-open targets) is a model-card
figure, not this test's: this one only asks that ψ reaches the pixels at all."""


def mouth_change(head, avatar, other_psi: torch.Tensor, landmarks: np.ndarray) -> float:
    own = avatar.render_batch(landmarks[None])[0].astype(np.float64)
    swapped_avatar = type(avatar)(avatar.generator, other_psi, avatar.source_landmarks, avatar.config,
                                  source_crops=avatar.source_crops)
    swapped = swapped_avatar.render_batch(landmarks[None])[0].astype(np.float64)
    box = mouth_box(landmarks, own.shape[:2])
    return float(np.abs(crop(own, box) - crop(swapped, box)).mean())


def test_swapping_psi_changes_the_synthesized_mouth_of_the_shipped_model():
    from talkinghead.data.synthetic.identity import Identity
    from talkinghead.data.synthetic.motion import Motion
    from talkinghead.data.synthetic.render import render_frame
    from talkinghead.inference import Source, TalkingHead
    from talkinghead.showcase import packaged_mona_lisa

    head = TalkingHead.load(None)
    if not head.config.model.synthesis_prior:
        pytest.skip("the shipped model predates the mouth prior (issue 25)")
    mona = head.personalize([str(packaged_mona_lisa())])
    size = head.config.model.image_size
    image, points = render_frame(Identity.sample(11), Motion.sample(11, 1).frame(0), size)
    other = head.personalize([Source("synthetic", image, image, np.asarray(points, np.float32),
                                     (0.0, 0.0, float(size)))])
    rest = mona.source_landmarks[0]
    assert mouth_openness(rest) < 0.05  # her mouth is closed: nothing to warp from
    driven = open_mouth(rest, 0.25)
    assert mouth_openness(driven) > 0.15
    change = mouth_change(head, mona, other.psi, driven)
    assert change >= MIN_MOUTH_CHANGE_GREY, f"ψ swap changed the painted mouth by {change:.3f} grey levels only"
    closed = mouth_change(head, mona, other.psi, rest)  # the closed mouth is warped pixels: ψ matters less there
    assert closed < change
