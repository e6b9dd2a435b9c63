"""A selfie video as the source (issue 26): frames where the face is out of view are skipped with one log line
giving the count, and only a video that rarely shows a face is refused.

The clips are made here from the synthetic renderer (no shared data): a synthetic face that dlib finds, which
slides out of the picture and back. Detection is the real default backend.
"""

from __future__ import annotations

import logging
import re

import numpy as np
import pytest

from talkinghead.config import preset
from talkinghead.data.synthetic import SyntheticVideo
from talkinghead.inference import MIN_VIDEO_FACES, TalkingHead
from talkinghead.landmarks import default_landmarks
from talkinghead.models import Embedder, Generator
from talkinghead.video import VideoWriter

pytestmark = pytest.mark.usefixtures("one_thread")
SIDE = 128
# Per frame, how far the face is pushed right (px): in view, sliding out (gone at >= 80 px), back in.
SHIFTS = [0] * 8 + [40, 80, 100, SIDE, SIDE, 100, 80, 40] + [0] * 8
OUT_OF_VIEW = {i for i, dx in enumerate(SHIFTS) if dx >= 100}  # nothing of the face left to find


def _shifted(frame: np.ndarray, dx: int) -> np.ndarray:
    """The frame moved ``dx`` px right, the uncovered part filled with the background's colour."""
    out = np.empty_like(frame)
    out[:] = frame[:, :1].mean(axis=(0, 1)).astype(np.uint8)
    out[:, dx:] = frame[:, :SIDE - dx]
    return out


def _clip(path, shifts) -> None:
    frames, _, _ = SyntheticVideo(0, 1, len(shifts)).render(SIDE)
    with VideoWriter(path, fps=25) as writer:
        for frame, dx in zip(frames, shifts, strict=True):
            writer.write(_shifted(frame, dx))


@pytest.fixture(scope="module")
def head():
    config = preset("tiny-64")
    return TalkingHead(Embedder(config.model), Generator(config.model), None, config, landmarks=default_landmarks())


def test_frames_without_a_face_are_skipped_and_counted_in_one_log_line(head, tmp_path, caplog):
    clip = tmp_path / "selfie.mp4"
    _clip(clip, SHIFTS)
    with caplog.at_level(logging.WARNING, logger="talkinghead.inference"):
        sources = head.prepare(clip, max_video_frames=len(SHIFTS))
    kept = {int(s.name.rsplit(" ", 1)[1]) for s in sources}
    skipped = set(range(len(SHIFTS))) - kept
    assert OUT_OF_VIEW <= skipped <= set(range(8, 16)), sorted(skipped)  # only frames the face had left
    lines = [r.getMessage() for r in caplog.records if "no face found" in r.getMessage()]
    assert len(lines) == 1, lines  # one line for the video, not one per frame
    assert re.search(rf"{re.escape(str(clip))}: no face found in {len(skipped)} of the {len(SHIFTS)} frames", lines[0])
    assert all(s.crop.shape == (64, 64, 3) for s in sources)


def test_a_video_with_a_face_in_every_frame_logs_nothing(head, tmp_path, caplog):
    clip = tmp_path / "steady.mp4"
    _clip(clip, [0] * 6)
    with caplog.at_level(logging.WARNING, logger="talkinghead.inference"):
        assert len(head.prepare(clip)) == 6
    assert not [r for r in caplog.records if "no face found" in r.getMessage()]


def test_a_video_with_too_few_faces_is_refused_naming_it_and_the_counts(head, tmp_path):
    shown = MIN_VIDEO_FACES - 1
    clip = tmp_path / "mostly empty.mp4"
    _clip(clip, [0] * shown + [SIDE] * 9)
    with pytest.raises(ValueError, match=rf"{re.escape(str(clip))}: a face was found in only {shown} of the "
                                         rf"{shown + 9} frames looked at, at least {MIN_VIDEO_FACES} are needed"):
        head.prepare(clip)
