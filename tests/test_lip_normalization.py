"""Lip normalization (issue 25, item 6): closing a face's mouth, and relative driving measured between closed
mouths, so that a source photographed with its mouth open follows the driver's opening."""

from __future__ import annotations

import numpy as np
import pytest

from _inference_helpers import face
from talkinghead.evaluate.lip_normalization import GUARD, driving_window, summarize
from talkinghead.landmarks.geometry import open_mouth
from talkinghead.landmarks.lip_normalization import close_mouth, mouth_gap
from talkinghead.landmarks.retarget import RIGID, Retargeter, retarget
from talkinghead.metrics.mouth import MOUTH_CLOSED, mouth_openness


def test_closing_meets_the_inner_lips_and_moves_only_the_lower_lip() -> None:
    opened = face(mouth_open=0.3, angle=0.25)  # a tilted head: closing works in the face's own upright frame
    assert mouth_gap(opened) > 10
    closed = close_mouth(opened)
    assert abs(mouth_gap(closed)) < 1e-3 and mouth_openness(closed) < 1e-4
    moved = np.flatnonzero(np.abs(closed - opened).max(1) > 1e-4)
    assert set(moved) <= {48, 54, 60, 64, *range(55, 60), 65, 66, 67}  # not the jaw line
    np.testing.assert_allclose(closed[RIGID], opened[RIGID], atol=1e-4)  # the head pose points stay
    np.testing.assert_allclose(closed[[61, 62, 63]], opened[[61, 62, 63]], atol=1e-4)  # the upper lip stays
    # the lower lip rose along the face's own vertical, not the image's
    down = np.array([-np.sin(0.25), np.cos(0.25)])
    rise = (opened[57] - closed[57]) @ down
    assert rise == pytest.approx(mouth_gap(opened), rel=1e-3)


def test_a_closed_mouth_is_left_alone_and_closing_undoes_opening_the_lips() -> None:
    rest = face(mouth_open=0.0)
    np.testing.assert_allclose(close_mouth(rest), rest, atol=1e-5)
    opened = open_mouth(rest, by=0.2)
    closed = close_mouth(opened)
    lower = [*range(55, 60), 65, 66, 67]
    np.testing.assert_allclose(closed[lower], rest[lower], atol=0.35)  # within a third of a pixel at 60 px a face
    with pytest.raises(ValueError, match="68, 2"):
        close_mouth(rest[:60])


def test_an_open_source_driven_by_a_closed_driver_closes_its_mouth_only_when_normalized() -> None:
    source = face(mouth_open=0.3, centre=(120, 110), scale=55)  # a laughing portrait
    reference = face(mouth_open=0.0)  # the driver at rest
    talking = face(mouth_open=0.2)
    plain = Retargeter(source, reference, "relative")
    normalized = Retargeter(source, reference, "relative", lip_normalization=True)
    assert mouth_openness(plain(reference)) > 0.2  # the source's laugh stays on a closed driver
    assert mouth_openness(normalized(reference)) < MOUTH_CLOSED
    # the driver's opening itself (same-shaped faces: the same openness), not the source's plus the driver's
    assert mouth_openness(normalized(talking)) == pytest.approx(mouth_openness(talking), abs=0.01)
    assert mouth_openness(plain(talking)) > mouth_openness(talking) + 0.2


def test_an_open_driver_reference_is_closed_too_and_self_driving_stays_exact() -> None:
    source = face(mouth_open=0.0)
    reference = face(mouth_open=0.25)  # the driver's first frame caught mid-word
    closing = face(mouth_open=0.0)
    assert mouth_openness(Retargeter(source, reference, "relative", True)(closing)) < MOUTH_CLOSED
    driver = np.stack([face(mouth_open=m, angle=0.05 * i) for i, m in enumerate((0.3, 0.1, 0.0, 0.2))])
    np.testing.assert_allclose(retarget(driver, driver[0], lip_normalization=True), driver, atol=1e-3)


def test_absolute_mode_ignores_it() -> None:
    source, reference = face(mouth_open=0.3), face()
    driver = face(mouth_open=0.1)
    np.testing.assert_array_equal(Retargeter(source, reference, "absolute", True)(driver),
                                  Retargeter(source, reference, "absolute")(driver))


def test_the_validation_window_keeps_away_from_the_source_frame() -> None:
    assert driving_window(200, 120, 48) == list(range(48))
    assert driving_window(200, 10, 48) == list(range(152, 200))
    assert driving_window(60, 30, 48) is None
    window = driving_window(100, 48 + GUARD, 48)
    assert window is not None and 48 + GUARD - window[-1] >= GUARD


def test_the_summary_pairs_the_clips() -> None:
    videos = {f"v{i}": {"plain": {"opening_error": 0.1 + i, "l1": 0.1, "mouth_l1": 0.2, "mouth_ssim": 0.5},
                        "normalized": {"opening_error": 0.05 + i, "l1": 0.1, "mouth_l1": 0.1 + 0.01 * i,
                                       "mouth_ssim": 0.6}} for i in range(3)}
    overall = summarize(videos)
    assert overall["opening_error"]["difference"] == pytest.approx(-0.05)
    assert overall["opening_error"]["interval"] == pytest.approx(0.0, abs=1e-12)
    assert overall["opening_error"]["better"] == 3 and overall["mouth_ssim"]["better"] == 3
    assert overall["l1"]["better"] == 0 and overall["mouth_l1"]["videos"] == 3
