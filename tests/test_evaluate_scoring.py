"""Face-dependent metrics compared on the same frames (MKR, "same frames" AKD and CSIM; evaluate.scoring).

A method that loses the face on a hard frame drops that frame's large distance from its own AKD; the held-out
split showed exactly that deciding which method's AKD was lower. These tests pin the fair comparison: the missing
keypoint rate counts the lost faces, and the paired means average every method over the same frames.
"""

from __future__ import annotations

import numpy as np
import pytest

from talkinghead.evaluate.methods import _records
from talkinghead.evaluate.scoring import FrameScorer, paired_metrics
from talkinghead.metrics.report import build_report, markdown_table

TRUTH = np.stack([np.arange(68.0), np.arange(68.0) % 7], axis=1)  # distinct points, eyes apart


class Lookup:
    """A detector and identity stand-in keyed by the image's first pixel: 0 = no face, k = landmarks at +k px."""

    name = "lookup"

    def __call__(self, image):
        shift = int(image[0, 0, 0])
        return None if shift == 0 else TRUTH + shift / np.sqrt(2)  # AKD = shift px (per point, x and y)

    def descriptor(self, image, key=None):  # a metrics.identity.CachedIdentity's signature
        shift = int(image[0, 0, 0])
        return None if shift == 0 else np.array([1.0, shift - 1.0])


def image(shift: int) -> np.ndarray:
    picture = np.full((16, 16, 3), 7, np.uint8)
    picture[0, 0, 0] = shift
    return picture


def test_paired_metrics_average_every_method_over_the_same_frames():
    scored = {"a": [{"akd": 1.0, "csim": 0.9}, {"akd": None, "csim": 0.8}, {"akd": 3.0, "csim": 0.7}],
              "b": [{"akd": 2.0, "csim": 0.5}, {"akd": 5.0, "csim": 0.6}, {"akd": None, "csim": None}]}
    paired = paired_metrics(scored)
    assert paired["a"] == {"paired_akd": 1.0, "paired_csim": pytest.approx(0.85)}
    assert paired["b"] == {"paired_akd": 2.0, "paired_csim": pytest.approx(0.55)}
    # No frame that both have: None, never a mean over different frames.
    assert paired_metrics({"a": [{"akd": 1.0}], "b": [{"akd": None}]}) == {"a": {"paired_akd": None},
                                                                           "b": {"paired_akd": None}}
    # A method without the metric at all (e.g. no identity backend for it) does not empty the others' pairing.
    assert paired_metrics({"a": [{"akd": 1.0, "csim": 0.5}], "b": [{"akd": 2.0}]})["a"]["paired_csim"] == 0.5
    with pytest.raises(ValueError, match="same frames"):
        paired_metrics({"a": [{"akd": 1.0}], "b": []})


def test_scorer_counts_a_lost_face_as_missing_and_a_faceless_truth_as_neither():
    scorer = FrameScorer(Lookup(), Lookup())
    truth = image(1)  # the truth's landmarks: TRUTH + 1/sqrt(2)
    found = scorer.score(image(3), truth, "video/frame0")
    assert found["mkr"] == 0.0 and found["akd"] == pytest.approx(2.0)
    lost = scorer.score(image(0), truth, "video/frame0")
    assert lost["mkr"] == 1.0 and lost["akd"] is None and lost["csim"] is None
    faceless = scorer.score(image(3), image(0), "video/frame1")  # no face in the truth: nothing to miss
    assert faceless["mkr"] is None and faceless["akd"] is None


def test_records_and_report_show_the_lost_face_and_the_fair_comparison():
    """The method that loses the hardest frame's face has the lower AKD over its own frames but not on the same
    frames; MKR shows the loss; the table explains the columns."""
    scorer = FrameScorer(Lookup(), Lookup())
    truths = [image(1), image(1), image(1)]
    outputs = {"mesh-warp": [image(2), image(3), image(0)],  # loses the face where the other is 9 px off
               "ours": [image(2), image(2), image(10)]}
    scored = {m: [scorer.score(o, t, f"v/frame{i}") for i, (o, t) in enumerate(zip(frames, truths, strict=True))]
              for m, frames in outputs.items()}
    records = _records(scored, {"video": "v", "shots": 8, "protocol": "self"})
    metrics = {r["method"]: r["metrics"] for r in records}
    assert metrics["mesh-warp"]["akd"] == pytest.approx(1.5) and metrics["ours"]["akd"] == pytest.approx(11 / 3)
    assert metrics["mesh-warp"]["paired_akd"] == pytest.approx(1.5)
    assert metrics["ours"]["paired_akd"] == pytest.approx(1.0)
    assert metrics["mesh-warp"]["mkr"] == pytest.approx(1 / 3) and metrics["ours"]["mkr"] == 0.0
    report = build_report(records + [{**r, "video": "w"} for r in records], baselines=("mesh-warp",))
    row = next(r for r in report["rows"] if r["method"] == "ours")
    assert "akd" in row["not_beaten"] and "paired_akd" not in row["not_beaten"] and "mkr" not in row["not_beaten"]
    table = markdown_table(report)
    assert "AKD same frames↓" in table and "MKR↓" in table and "same frames\": the frames where every" in table
