"""Face-dependent metrics compared on the same frames (MKR, "same frames" AKD and CSIM; evaluate.scoring), dlib's
identity distance and verification beside CSIM, and the set metrics' (FD, KID) jackknife intervals in the report.

A method that loses the face on a hard frame drops that frame's large distance from its own AKD; the held-out
split showed exactly that deciding which method's AKD was lower. These tests pin the fair comparison: the missing
keypoint rate counts the lost faces, and the paired means average every method over the same frames.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from talkinghead.evaluate.methods import _records
from talkinghead.evaluate.scoring import FrameScorer, fid_set_metrics, paired_metrics, safe_name
from talkinghead.metrics.fid import frechet_distance_of_features, kernel_distance
from talkinghead.metrics.identity import NO_ARCFACE_THRESHOLD
from talkinghead.metrics.realism import TRAINING_NETWORK_NOTE
from talkinghead.metrics.report import build_report, markdown_table, write_json

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


class DlibLike(Lookup):
    """The Lookup stand-in with dlib's same-person threshold: descriptor [1, k - 1], so distances are |k - j|."""

    same_person_threshold = 0.6


def test_scorer_adds_dlib_distance_and_verification_beside_csim():
    scorer = FrameScorer(DlibLike(), Lookup())
    truth = image(3)
    close = scorer.score(image(3), truth, "v/frame0")  # the same descriptor: distance 0, verified
    assert close["identity_distance"] == pytest.approx(0.0) and close["verified"] == 1.0
    far = scorer.score(image(4), truth, "v/frame0")  # distance 1 > 0.6
    assert far["identity_distance"] == pytest.approx(1.0) and far["verified"] == 0.0
    assert far["csim"] == pytest.approx((1 + 3 * 2) / (np.sqrt(10) * np.sqrt(5)))
    lost = scorer.score(image(0), truth, "v/frame0")
    assert lost["identity_distance"] is None and lost["verified"] is None and lost["csim"] is None
    # Several references (cross-identity): the mean distance, as CSIM takes the mean cosine; verified from it.
    several = scorer.score(image(4), identity_references=[(image(4), "s/0"), (image(5), "s/1")])
    assert several["identity_distance"] == pytest.approx(0.5) and several["verified"] == 1.0
    # A backend without a threshold (ArcFace) gives CSIM only: dlib's distance and 0.6 do not apply to it.
    plain = FrameScorer(Lookup(), Lookup()).score(image(4), truth, "v/frame0")
    assert plain["csim"] == pytest.approx(far["csim"]) and "identity_distance" not in plain and "verified" not in plain


def test_identity_distance_and_verification_are_paired_and_labelled_in_the_report():
    scorer = FrameScorer(DlibLike(), Lookup())
    truths = [image(3), image(3), image(3)]
    outputs = {"copy-source": [image(3), image(4), image(0)], "ours": [image(4), image(3), image(3)]}
    scored = {m: [scorer.score(o, t, f"v/frame{i}") for i, (o, t) in enumerate(zip(frames, truths, strict=True))]
              for m, frames in outputs.items()}
    metrics = {r["method"]: r["metrics"] for r in _records(scored, {"video": "v", "shots": 8, "protocol": "self"})}
    assert metrics["copy-source"]["verified"] == 0.5 and metrics["ours"]["verified"] == pytest.approx(2 / 3)
    assert metrics["ours"]["identity_distance"] == pytest.approx(1 / 3)
    # Same frames: the third frame (copy-source lost the face) is left out of both.
    assert metrics["copy-source"]["paired_verified"] == 0.5 and metrics["ours"]["paired_verified"] == 0.5
    assert metrics["ours"]["paired_identity_distance"] == pytest.approx(0.5)
    records = _records(scored, {"video": "v", "shots": 8, "protocol": "self"})
    report = build_report(records + [{**r, "video": "w"} for r in records], baselines=("copy-source",),
                          metadata={"identity_backend": "dlib"})
    table = markdown_table(report)
    for label in ("ID dist↓", "Verified@0.6↑", "ID dist same frames↓", "Verified@0.6 same frames↑"):
        assert label in table
    assert "dlib's same-person threshold 0.6" in table and NO_ARCFACE_THRESHOLD not in table


def test_an_arcface_report_says_why_it_has_no_identity_distance():
    records = [{"video": v, "method": m, "shots": 1, "metrics": {"csim": 0.5}}
               for v in ("a", "b") for m in ("copy-source", "ours")]
    table = markdown_table(build_report(records, baselines=("copy-source",), metadata={"identity_backend": "arcface"}))
    assert NO_ARCFACE_THRESHOLD in table and "ID dist" in NO_ARCFACE_THRESHOLD and "ID dist↓" not in table


def _feature_cache(out, rng, videos: int = 5, frames: int = 6, dim: int = 32) -> list[str]:
    """Per-video FD-MobileNetV2 feature files as evaluate writes them: real frames and two methods' outputs."""
    keys = [f"person{i}/clip" for i in range(videos)]
    folder = out / "cache" / "fd_mobilenet"
    folder.mkdir(parents=True)
    for key in keys:
        real = rng.normal(size=(frames, dim))
        outputs = {"copy-source__T1": real + rng.normal(size=(frames, dim)) * 0.3,
                   "ours__T1": rng.normal(size=(frames, dim)) + 0.5}
        np.savez(folder / f"{safe_name(key)}.npz", real=real, **outputs)
    return keys


def test_set_metrics_carry_a_video_jackknife_interval_into_report_json_and_table(tmp_path):
    rng = np.random.default_rng(0)
    keys = _feature_cache(tmp_path, rng)
    pairs = {("copy-source", 1), ("ours", 1)}
    found = fid_set_metrics(tmp_path, keys, pairs, object(), "", metric="fd_mobilenet")
    stores = [np.load(tmp_path / "cache" / "fd_mobilenet" / f"{safe_name(k)}.npz") for k in keys]
    real = np.concatenate([s["real"] for s in stores])
    fake = np.concatenate([s["ours__T1"] for s in stores])
    fd, kid = found[("ours", 1)]["fd_mobilenet"], found[("ours", 1)]["kid_mobilenet"]
    assert fd["value"] == pytest.approx(frechet_distance_of_features(real, fake))
    assert kid["value"] == pytest.approx(kernel_distance(real, fake))
    for value in (fd, kid):
        assert value["low"] < value["value"] < value["high"] and value["se"] > 0 and value["groups"] == 5
        assert value["num_real"] == value["num_fake"] == 30 and "jackknife" in value["interval"]
    # The jackknife by hand: each video's real and generated frames left out together.
    videos = np.repeat(np.arange(5), 6)
    left_out = np.array([frechet_distance_of_features(real[videos != g], fake[videos != g]) for g in range(5)])
    assert fd["se"] == pytest.approx(np.sqrt(4 / 5 * ((left_out - left_out.mean()) ** 2).sum()))
    assert found[("copy-source", 1)]["fd_mobilenet"]["value"] < fd["value"]  # the noisy copy is the closer set
    report = build_report([{"video": k, "method": m, "shots": 1, "metrics": {"ssim": 0.5}} for k in keys
                           for m, _ in pairs], set_metrics=found, baselines=("copy-source",))
    row = next(r for r in report["rows"] if r["method"] == "ours")
    assert row["metrics"]["fd_mobilenet"]["low"] == fd["low"]
    assert row["metrics"]["kid_mobilenet"]["high"] == kid["high"]
    written = json.loads(write_json(report, tmp_path / "report.json").read_text())
    entry = next(r for r in written["rows"] if r["method"] == "ours")["metrics"]["kid_mobilenet"]
    assert (entry["low"], entry["high"], entry["se"]) == pytest.approx((kid["low"], kid["high"], kid["se"]))
    table = markdown_table(report)
    cell = f"{fd['value']:.2f} ± {(fd['high'] - fd['low']) / 2:.2f}"
    assert cell in table and f"{kid['value']:.4f} ± {(kid['high'] - kid['low']) / 2:.4f}" in table
    assert "jackknife" in table and TRAINING_NETWORK_NOTE in table
    # Unavailable: FD and KID both say why.
    missing = fid_set_metrics(tmp_path, keys, pairs, None, "no MobileNetV2 weights", metric="fd_mobilenet")
    assert missing[("ours", 1)] == {"fd_mobilenet": {"value": None, "unavailable": "no MobileNetV2 weights"},
                                    "kid_mobilenet": {"value": None, "unavailable": "no MobileNetV2 weights"}}


def test_an_independent_detector_measures_its_own_akd_beside_dlibs():
    """AKD by dlib is circular (dlib drives the warp); an installed independent detector measures
    ``akd_independent`` against its own landmarks of the truth, computed once per truth frame."""
    calls = []

    def independent(picture):
        calls.append(int(picture[0, 0, 0]))
        found = Lookup()(picture)
        return None if found is None else found * 2.0  # another detector, another scale: its AKD differs

    scorer = FrameScorer(Lookup(), Lookup(), independent=("stand-in", independent))
    values = scorer.score(image(3), image(1), "video/frame1")
    assert values["akd"] == pytest.approx(2.0)
    assert values["akd_independent"] == pytest.approx(4.0)
    scorer.score(image(5), image(1), "video/frame1")
    assert calls == [1, 3, 5]  # the truth once, each output once
    assert scorer.score(image(0), image(1), "video/frame1")["akd_independent"] is None  # its face not found
    assert "akd_independent" not in FrameScorer(Lookup(), Lookup()).score(image(3), image(1), "video/frame1")
