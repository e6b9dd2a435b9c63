"""The teeth measure (issue 25): tooth-like pixels in the truth's inner-lip polygon, a frame that shows teeth, and
the report's "Teeth shown" / "Teeth invented" pooled over frames."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
from scipy import stats

from talkinghead.evaluate.scoring import FrameScorer, mean_metrics
from talkinghead.metrics.mouth import (
    INNER_LIP,
    OUTER_LIP,
    TEETH_NOTE,
    TEETH_SHARE,
    inner_mouth_mask,
    min_mouth_pixels,
    shows_teeth,
    teeth_metrics,
    teeth_share,
)
from talkinghead.metrics.report import FRAME_COUNT, build_report, markdown_table, pooled_share

SKIN, LIPS, BACKGROUND = (205, 150, 120), (175, 70, 80), (60, 90, 120)
WHITE, DARK_RED, CAVITY = (245, 243, 236), (110, 25, 35), (45, 12, 18)


def face(gap: float = 14.0, scale: float = 1.0) -> np.ndarray:
    """68 points of a schematic frontal face in a 128 px frame (x ``scale``): jaw, brows, eyes, nose, lips; ``gap``
    opens the inner lips by that many pixels."""
    points = np.zeros((68, 2))
    angle = np.linspace(0.0, np.pi, 17)
    points[:17] = np.stack([64 - 44 * np.cos(angle), 50 + 60 * np.sin(angle)], 1)  # jaw, ear to ear via the chin
    points[17:27] = np.stack([np.r_[np.linspace(26, 56, 5), np.linspace(72, 102, 5)], np.full(10, 34.0)], 1)
    points[36:42] = [(34, 46), (40, 43), (46, 43), (52, 46), (46, 49), (40, 49)]
    points[42:48] = points[36:42] + (42, 0)
    points[27:36] = [(64, 46), (64, 53), (64, 60), (64, 67), (56, 72), (60, 73), (64, 74), (68, 73), (72, 72)]
    top, bottom = 88 - gap / 2, 88 + gap / 2
    points[48:60] = [(40, 88), (48, top - 6), (56, top - 8), (64, top - 7), (72, top - 8), (80, top - 6), (88, 88),
                     (80, bottom + 6), (72, bottom + 8), (64, bottom + 9), (56, bottom + 8), (48, bottom + 6)]
    points[60:68] = [(45, 88), (54, top), (64, top), (74, top), (83, 88), (74, bottom), (64, bottom), (54, bottom)]
    return points * scale


def frame(mouth: tuple[int, int, int], points: np.ndarray | None = None, size: int = 128,
          cast: tuple[float, float, float] = (1.0, 1.0, 1.0)) -> np.ndarray:
    """A uint8 RGB frame: skin inside the face's hull, lips, and the inner-lip polygon filled with ``mouth``, with a
    little noise (seed 0) and every channel multiplied by ``cast``."""
    points = face(scale=size / 128) if points is None else points
    image = np.zeros((size, size, 3), np.float64) + BACKGROUND
    cv2.fillConvexPoly(image, cv2.convexHull(np.round(points[:27]).astype(np.int32)), SKIN)
    cv2.fillPoly(image, [np.round(points[list(OUTER_LIP)]).astype(np.int32)], LIPS)
    cv2.fillPoly(image, [np.round(points[list(INNER_LIP)]).astype(np.int32)], mouth)
    image += np.random.default_rng(0).normal(0.0, 3.0, image.shape)
    return np.clip(image * np.asarray(cast), 0, 255).astype(np.uint8)


def test_a_white_mouth_shows_teeth_and_a_dark_red_dark_or_closed_one_does_not():
    points = face()
    white = teeth_share(frame(WHITE), points)
    assert white is not None and white > 0.9 and shows_teeth(white) is True
    for colour in (DARK_RED, CAVITY):  # tongue, the mouth's inside: not tooth-like
        share = teeth_share(frame(colour), points)
        assert share == 0.0 and shows_teeth(share) is False, colour
    # Closed lips where the truth's mouth is open (what copy-source shows) are no teeth.
    assert teeth_share(frame(LIPS), points) == 0.0
    # A grey mouth as light as the lips is no tooth either: teeth are lighter than the lips and the face's floor.
    assert teeth_share(frame((120, 110, 110)), points) == 0.0
    # The known limit (module docstring): skin inside an open outline of red lips is lighter and less coloured
    # than those lips, so it passes; a change that fixes it should update the docstring and this line.
    assert shows_teeth(teeth_share(frame(SKIN), points)) is True


def test_the_decision_is_the_share_of_tooth_like_pixels_against_the_threshold():
    points = face()
    mask = inner_mouth_mask(points, (128, 128))
    rows, columns = np.nonzero(mask)
    for fraction, expected in ((TEETH_SHARE / 2, False), (TEETH_SHARE * 2, True), (0.5, True)):
        image = frame(DARK_RED)
        count = int(round(fraction * mask.sum()))
        image[rows[:count], columns[:count]] = WHITE  # the top rows of the mouth: upper teeth
        share = teeth_share(image, points)
        assert share == pytest.approx(count / mask.sum()) and shows_teeth(share) is expected, fraction


def test_a_closed_mouth_has_no_measure():
    closed = face(gap=0.0)
    assert inner_mouth_mask(closed, (128, 128)).sum() < min_mouth_pixels((128, 128))
    assert teeth_share(frame(WHITE, closed), closed) is None and shows_teeth(None) is None
    assert teeth_metrics(frame(WHITE, closed), frame(WHITE, closed), closed) == {"teeth_shown": None,
                                                                               "teeth_invented": None}
    assert teeth_share(frame(WHITE, face(gap=1.0)), face(gap=1.0)) is None  # barely parted: a 1-px slit
    with pytest.raises(ValueError, match="uint8 RGB"):
        teeth_share(frame(WHITE).astype(np.float32), face())


def test_the_decision_holds_under_a_colour_cast_darker_light_and_another_frame_size():
    for cast in ((1.0, 0.8, 1.0), (0.6, 0.6, 0.6), (1.0, 0.9, 0.7)):  # magenta, dim, warm
        assert shows_teeth(teeth_share(frame(WHITE, cast=cast), face())) is True, cast
        assert shows_teeth(teeth_share(frame(DARK_RED, cast=cast), face())) is False, cast
    big = face(scale=2.0)
    assert min_mouth_pixels((256, 256)) == 4 * min_mouth_pixels((128, 128))
    assert shows_teeth(teeth_share(frame(WHITE, big, size=256), big)) is True
    assert shows_teeth(teeth_share(frame(DARK_RED, big, size=256), big)) is False


def test_shown_and_invented_count_the_output_on_the_truths_polygon():
    points, white, dark = face(), frame(WHITE), frame(DARK_RED)
    assert teeth_metrics(white, white, points) == {"teeth_shown": 1.0, "teeth_invented": None}
    assert teeth_metrics(dark, white, points) == {"teeth_shown": 0.0, "teeth_invented": None}
    assert teeth_metrics(white, dark, points) == {"teeth_shown": None, "teeth_invented": 1.0}
    assert teeth_metrics(dark, dark, points) == {"teeth_shown": None, "teeth_invented": 0.0}
    # The evaluation's scorer adds them to every frame scored with the truth's landmarks.
    values = FrameScorer(identity=None, detector=None).score(dark, white, mouth_landmarks=points)
    assert values["teeth_shown"] == 0.0 and values["teeth_invented"] is None and "mouth_l1" in values


def _video(video: str, method: str, frames: list[tuple[float | None, float | None]]) -> dict:
    """A per-video record as `evaluate.methods._records` makes it, from per-frame (shown, invented) values."""
    per_frame = [{"ssim": 0.5, "teeth_shown": shown, "teeth_invented": invented} for shown, invented in frames]
    return {"video": video, "method": method, "shots": 8, "metrics": mean_metrics(per_frame)}


def test_the_report_pools_the_frames_of_all_videos_and_counts_them():
    none, teeth_shown, teeth_lost, invented, not_invented = (None, None), (1.0, None), (0.0, None), (None, 1.0), \
        (None, 0.0)
    records = [
        # ours: v0 has 3 truth-teeth frames (2 shown), v1 has 1 (shown); v2 has none (its mouths are closed)
        _video("v0", "ours", [teeth_shown, teeth_shown, teeth_lost, invented, not_invented]),
        _video("v1", "ours", [teeth_shown, not_invented, not_invented, none]),
        _video("v2", "ours", [none, none]),
        _video("v0", "mesh-warp", [teeth_lost, teeth_lost, teeth_lost, not_invented, not_invented]),
        _video("v1", "mesh-warp", [teeth_lost, invented, invented, none]),
        _video("v2", "mesh-warp", [none, none]),
    ]
    first = records[0]["metrics"]
    assert first["teeth_shown"] == pytest.approx(2 / 3) and first["teeth_shown" + FRAME_COUNT] == 3
    assert first["teeth_invented"] == 0.5 and first["teeth_invented" + FRAME_COUNT] == 2
    assert records[2]["metrics"]["teeth_shown"] is None and records[2]["metrics"]["teeth_shown" + FRAME_COUNT] == 0
    report = build_report(records, baselines=("mesh-warp",))
    assert "teeth_shown" in report["metrics"] and "teeth_shown" + FRAME_COUNT not in report["metrics"]
    ours = next(r for r in report["rows"] if r["method"] == "ours")["metrics"]
    shown = ours["teeth_shown"]
    assert shown["mean"] == pytest.approx(3 / 4)  # pooled frames: (2 + 1) / (3 + 1); by video it would be 5/6
    assert (shown["n"], shown["hits"], shown["videos"], shown["missing"]) == (4, 3, 2, 1)
    # Delete-one-video jackknife: without v0 1/1, without v1 2/3.
    left_out = np.array([1.0, 2 / 3])
    se = math.sqrt(1 / 2 * ((left_out - left_out.mean()) ** 2).sum())
    assert shown["se"] == pytest.approx(se)
    assert shown["high"] - shown["mean"] == pytest.approx(stats.t.ppf(0.975, 1) * se)
    invented_ours = ours["teeth_invented"]
    assert invented_ours["mean"] == pytest.approx(1 / 4) and invented_ours["n"] == 4 and invented_ours["hits"] == 1
    mesh = next(r for r in report["rows"] if r["method"] == "mesh-warp")["metrics"]
    assert (mesh["teeth_shown"]["mean"], mesh["teeth_shown"]["n"]) == (0.0, 4)
    assert mesh["teeth_invented"]["mean"] == pytest.approx(2 / 4)
    table = markdown_table(report)
    assert "Teeth shown (truth has teeth)↑" in table and "Teeth invented (truth has none)↓" in table
    assert "(n=4)" in table and TEETH_NOTE in table


def test_pooling_needs_the_frame_counts_and_says_nothing_without_frames():
    with pytest.raises(ValueError, match="teeth_shown_frames"):
        pooled_share([{"video": "v0", "metrics": {"teeth_shown": 0.5}}], "teeth_shown")
    empty = pooled_share([{"video": "v0", "metrics": {"teeth_shown": None, "teeth_shown_frames": 0}}], "teeth_shown")
    assert empty["mean"] is None and (empty["n"], empty["videos"], empty["missing"]) == (0, 0, 1)
    single = pooled_share([{"video": "v0", "metrics": {"teeth_shown": 0.5, "teeth_shown_frames": 4}}], "teeth_shown")
    assert single["mean"] == 0.5 and single["low"] is None and single["hits"] == 2  # one video: no interval
