"""Issue 24's frame choices: the temporal window (disjoint from targets and sources) and the mouth-open split."""

from __future__ import annotations

import numpy as np
import pytest

from talkinghead.evaluate import mouth_open_split_frames, split_frames, temporal_window
from talkinghead.evaluate.protocol import MIN_WINDOW
from talkinghead.metrics.mouth import MOUTH_CLOSED, MOUTH_OPEN


def test_the_window_is_consecutive_seeded_and_shrinks_to_what_the_video_can_spare():
    window = temporal_window("id/clip", 200, needed=48, length=48, seed=0)
    assert len(window) == 48 and list(window) == list(range(window[0], window[0] + 48))
    assert window == temporal_window("id/clip", 200, needed=48, length=48, seed=0)
    assert window != temporal_window("id/clip", 200, needed=48, length=48, seed=1)
    assert len(temporal_window("id/clip", 70, needed=48, length=48)) == 22  # 70 - 48 frames left for it
    assert temporal_window("id/clip", 48 + MIN_WINDOW - 1, needed=48) == ()


def test_targets_and_sources_never_fall_in_the_window_and_no_window_keeps_the_old_split():
    window = temporal_window("id/clip", 120, needed=48, length=48, seed=3)
    targets, sources = split_frames("id/clip", 120, (1, 8, 32), targets=16, seed=3, exclude=window)
    assert not set(targets) & set(window) and not set(sources[32]) & set(window)
    assert not set(targets) & set(sources[32]) and set(sources[1]) <= set(sources[8]) <= set(sources[32])
    assert split_frames("id/clip", 120, (1, 8), 16, 3, exclude=()) == split_frames("id/clip", 120, (1, 8), 16, 3)
    with pytest.raises(ValueError, match="frames to split"):
        split_frames("id/clip", 60, (1, 8, 32), targets=16, exclude=range(20))


def test_the_mouth_open_split_takes_open_targets_and_only_closed_sources():
    rng = np.random.default_rng(0)
    openness = np.concatenate([rng.uniform(0.0, 0.02, 60), rng.uniform(0.0, 0.3, 140)])
    targets, sources = mouth_open_split_frames("id/clip", openness, (1, 8, 32), targets=16, seed=0)
    assert len(targets) == 16 and all(openness[f] > MOUTH_OPEN for f in targets)
    assert len(sources[32]) == 32 and all(openness[f] < MOUTH_CLOSED for f in sources[32])
    assert set(sources[1]) <= set(sources[8]) <= set(sources[32])
    assert (targets, sources) == mouth_open_split_frames("id/clip", openness, (1, 8, 32), targets=16, seed=0)


def test_a_video_that_cannot_give_closed_sources_or_open_targets_says_why():
    mostly_open = np.full(100, 0.2)
    mostly_open[:5] = 0.0
    reason = mouth_open_split_frames("id/clip", mostly_open, (1, 8), targets=16)
    assert isinstance(reason, str) and "5 frames with the mouth closed" in reason and "T = 8 needs 8" in reason
    never_open = np.zeros(100)
    assert "no frame with the mouth open" in mouth_open_split_frames("id/clip", never_open, (1, 8), targets=16)


def test_the_temporal_window_is_driven_by_landmarks_smoothed_as_animate_smooths_a_driver(monkeypatch):
    """Every method in the window gets the same driving landmarks: One-Euro smoothed (what `animate` feeds the
    model) by default, the stored ones with temporal_landmarks="raw"; the choice is recorded and checked."""
    import numpy as np
    import pytest

    from talkinghead.evaluate import methods
    from talkinghead.evaluate.settings import TEMPORAL_FPS, EvaluationSettings
    from talkinghead.landmarks.smoothing import LandmarkSmoother

    rng = np.random.default_rng(0)
    track = (np.full((12, 68, 2), 64.0) + rng.normal(0, 1.5, (12, 68, 2))).astype(np.float32)  # jitter only
    track[:, 36:48, 0] += np.linspace(-20, 20, 12)[None, :].T  # eyes apart, so the face has a size
    seen = {}

    def fake_generate(ctx, avatars, source_images, source_landmarks, landmarks):
        seen["landmarks"] = landmarks
        return {"mesh-warp": [np.zeros((4, 4, 3), np.uint8)] * len(landmarks)}

    monkeypatch.setattr(methods, "_generate", fake_generate)
    frames = np.zeros((12, 4, 4, 3), np.uint8)
    for choice in ("smoothed", "raw"):
        ctx = type("Ctx", (), {"temporal_landmarks": choice})()
        methods._temporal(ctx, {}, frames[:1], track[:1], frames, track)
        if choice == "raw":
            np.testing.assert_array_equal(seen["landmarks"], track)
        else:
            smoother = LandmarkSmoother(TEMPORAL_FPS)
            np.testing.assert_allclose(seen["landmarks"], np.stack([smoother(p) for p in track]), rtol=1e-6)
            assert np.abs(np.diff(seen["landmarks"], axis=0)).mean() < np.abs(np.diff(track, axis=0)).mean()
    assert EvaluationSettings().record()["temporal_landmarks"] == "smoothed"
    assert EvaluationSettings(temporal_landmarks="raw").record()["temporal_landmarks"] == "raw"
    with pytest.raises(ValueError, match="temporal_landmarks"):
        EvaluationSettings(temporal_landmarks="wobbly")
