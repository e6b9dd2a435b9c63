"""The user study (issue 18) without a browser: triplets follow the paper's protocol, answers are stored once and
survive a torn write, USER accuracy and its Wilson interval, the loopback server, the static folder, the command."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from _study_helpers import METHODS, VIDEOS, write_evaluation
from talkinghead.study import (
    AnswerError,
    AnswerLog,
    StudyServer,
    build_study,
    load_study,
    read_answers,
    study_results,
    wilson_interval,
    write_static,
    write_study,
)


@pytest.fixture()
def evaluation(tmp_path):
    return write_evaluation(tmp_path / "eval")


def test_triplets_hold_two_real_frames_of_the_person_and_one_generated(evaluation):
    study = build_study(evaluation, seed=1)
    assert len(study.triplets) == len(METHODS) * sum(len(f) for _, _, f in VIDEOS)
    identity_of = {key: identity for key, identity, _ in VIDEOS}
    positions = set()
    for triplet in study.triplets:
        fake = triplet.images[triplet.fake]
        assert fake.endswith(f"/T1/{triplet.method}/{triplet.frame:06d}.png")
        reals = [p for i, p in enumerate(triplet.images) if i != triplet.fake]
        assert all("/real/" in p for p in reals) and len(set(reals)) == 2
        videos = {p.split("/")[1] for p in reals}
        assert {identity_of[k] for k in identity_of if k.replace("/", "_") in videos} == {triplet.identity}
        own_truth = f"frames/{triplet.video.replace('/', '_')}/real/{triplet.frame:06d}.png"
        assert own_truth not in reals
        if triplet.identity == "anna":  # another video of hers exists: the paper's choice
            assert triplet.real_from_other_videos and triplet.video.replace("/", "_") not in videos
        else:
            assert not triplet.real_from_other_videos
        positions.add(triplet.fake)
    assert positions == {0, 1, 2}
    assert build_study(evaluation, seed=1) == study and build_study(evaluation, seed=2).id != study.id
    limited = build_study(evaluation, seed=1, per_row=2)
    assert sorted(t.row for t in limited.triplets) == sorted(f"{m} (1)" for m in METHODS for _ in range(2))


def test_an_evaluation_without_saved_frames_says_what_to_do(tmp_path, evaluation):
    with pytest.raises(FileNotFoundError, match="splits.json"):
        build_study(tmp_path / "nothing")
    (tmp_path / "bare").mkdir()
    (tmp_path / "bare" / "splits.json").write_text((evaluation / "splits.json").read_text())
    with pytest.raises(FileNotFoundError, match="--study-frames"):
        build_study(tmp_path / "bare")


def test_a_folder_of_another_study_is_refused(evaluation, tmp_path):
    write_study(build_study(evaluation, seed=1), tmp_path / "s")
    write_study(build_study(evaluation, seed=1), tmp_path / "s")  # the same study again is fine
    with pytest.raises(ValueError, match="another study"):
        write_study(build_study(evaluation, seed=2), tmp_path / "s")
    assert load_study(tmp_path / "s") == build_study(evaluation, seed=1)


def test_wilson_interval_known_values():
    assert wilson_interval(8, 10) == pytest.approx((0.4902, 0.9433), abs=1e-4)
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert wilson_interval(50, 150) == pytest.approx((0.2629, 0.4121), abs=1e-4)
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_answers_are_stored_once_checked_and_read_past_a_torn_line(evaluation, tmp_path):
    study = build_study(evaluation)
    log = AnswerLog(tmp_path / "answers.jsonl", study)
    first, second = study.triplets[:2]
    log.append({"session": "a" * 32, "triplet": first.id, "choice": first.fake, "seconds": 1.5})
    log.append({"session": "a" * 32, "triplet": first.id, "choice": (first.fake + 1) % 3, "seconds": 2.0})  # retry
    log.append({"session": "b" * 32, "triplet": first.id, "choice": (first.fake + 1) % 3, "seconds": 3.0})
    log.append({"session": "a" * 32, "triplet": second.id, "choice": (second.fake + 2) % 3, "seconds": 0.5})
    assert len(log.read()) == 3 and log.answered("a" * 32) == [first.id, second.id]
    for bad, field in [({"session": "x"}, "session"), ({"triplet": "nope"}, "triplet"), ({"choice": 3}, "choice"),
                       ({"seconds": -1}, "seconds"), ({"study": "other"}, "study")]:
        with pytest.raises(AnswerError, match=field):
            log.append({"session": "c" * 32, "triplet": first.id, "choice": 0, "seconds": 1.0, **bad})
    with open(log.path, "a") as handle:
        handle.write('{"session": "torn')  # a crash mid-write
    assert len(read_answers(log.path)) == 3
    results = study_results(study, read_answers(log.path))
    assert results["answers"] == 3 and results["raters"] == 2
    row = next(r for r in results["rows"] if r["method"] == first.method)
    assert row["correct"] >= 1 and row["raters"] == 2
    total_correct = sum(r["correct"] for r in results["rows"])
    assert total_correct == 1  # only session a's first answer to the first triplet was right


def _request(url, data=None):
    request = urllib.request.Request(url, data=json.dumps(data).encode() if data is not None else None,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, response.read()


def test_server_saves_answers_serves_only_study_images_and_hides_the_answer(evaluation, tmp_path):
    study = build_study(evaluation)
    with StudyServer(study, tmp_path / "answers.jsonl", port=0) as server:
        url = server.start()
        status, page = _request(url)
        text = page.decode()
        assert status == 200 and study.id in text
        for secret in (*METHODS, "real", "frames/", '"fake"'):
            assert secret not in text.split("<script>")[1].split("const PREFIX")[0]
        triplet = study.triplets[0]
        status, image = _request(f"{url}image/{triplet.id}/{triplet.fake}")
        assert status == 200 and image == (evaluation / triplet.images[triplet.fake]).read_bytes()
        for missing in ("image/nope/0", "image/../splits.json", f"image/{triplet.id}/3", "frames/x.png"):
            with pytest.raises(urllib.error.HTTPError, match="404"):
                _request(url + missing)
        session = "d" * 32
        assert _request(f"{url}api/answer", {"session": session, "triplet": triplet.id, "choice": 1,
                                             "seconds": 2.5})[0] == 200
        with pytest.raises(urllib.error.HTTPError, match="400"):
            _request(f"{url}api/answer", {"session": session, "triplet": triplet.id, "choice": 7, "seconds": 1})
        assert json.loads(_request(f"{url}api/state?session={session}")[1])["answered"] == [triplet.id]
    stored = read_answers(tmp_path / "answers.jsonl")
    assert [(a["triplet"], a["choice"], a["seconds"]) for a in stored] == [(triplet.id, 1, 2.5)]


def test_static_folder_has_opaque_images_and_no_answers(evaluation, tmp_path):
    study = build_study(evaluation)
    page = write_static(study, tmp_path / "static")
    html = page.read_text()
    assert '"mode": "static"' in html and "localStorage" in html
    config = html.split("const CONFIG = ")[1].split(";\n")[0]
    assert not any(m in config for m in METHODS) and "fake" not in config
    images = sorted(p.name for p in (tmp_path / "static" / "images").iterdir())
    assert len(images) == 3 * len(study.triplets)
    t = study.triplets[0]
    assert (tmp_path / "static" / "images" / f"{t.id}_{t.fake}.png").read_bytes() == \
        (evaluation / t.images[t.fake]).read_bytes()


def test_command_writes_a_static_study_and_prints_results(evaluation, tmp_path, capsys):
    from talkinghead.cli import main

    assert main(["study", str(evaluation), "--static", str(tmp_path / "static"), "--per-row", "2"]) == 0
    assert "6 triplets" in capsys.readouterr().out
    study = load_study(evaluation / "study")
    answers = tmp_path / "downloaded.jsonl"
    answers.write_text("".join(json.dumps({"study": study.id, "session": "e" * 32, "triplet": t.id, "choice": t.fake,
                                           "seconds": 1.0}) + "\n" for t in study.triplets[:4]))
    assert main(["study", str(evaluation), "--results", "--answers", str(answers)]) == 0
    out = capsys.readouterr().out
    assert "4 answers from 1 rater(s)" in out and "| 1.000 |" in out
    assert (evaluation / "study" / "results.png").is_file()
    assert json.loads((evaluation / "study" / "results.json").read_text())["answers"] == 4
    assert main(["study", str(tmp_path / "nothing"), "--results"]) == 2


def test_an_evaluation_saves_study_frames_and_reports_fd_mobilenet_and_sharpness(tmp_path):
    """End to end on a tiny synthetic evaluation: --study-frames writes the frames the study needs, and the report
    carries FD-MobileNetV2 (labelled as not FID) and relative sharpness for every row, baselines included."""
    from talkinghead.checkpoint import save_checkpoint
    from talkinghead.config import preset
    from talkinghead.data.prepare import write_synthetic_dataset
    from talkinghead.evaluate import EvaluationSettings, evaluate
    from talkinghead.metrics.realism import FD_LABEL
    from test_evaluate import STAND_INS, fresh_tensors

    write_synthetic_dataset(tmp_path / "data", num_identities=2, videos_per_identity=2, frames_per_video=6, size=64,
                            seed=3)
    config = preset("tiny-64-ff")
    export = save_checkpoint(tmp_path / "ff.safetensors", fresh_tensors(config, seed=1), config, kind="export",
                             metadata={"dataset": {"identities": ["someone-else"], "content_hash": "x"},
                                       "variant": "FF"})
    settings = EvaluationSettings(shots=(1,), targets=3, progress=False, device="cpu", study_frames=2)
    summary = evaluate(export, tmp_path / "data", tmp_path / "eval", settings, STAND_INS)
    report = summary["self_reenactment"]
    methods = {row["method"] for row in report["rows"]}
    assert methods == {"copy-source", "mesh-warp", "ours-FF"}
    for row in report["rows"]:
        fd, sharpness = row["metrics"]["fd_mobilenet"], row["metrics"]["sharpness"]
        assert fd["mean"] is not None and fd["mean"] >= -1e-6 and fd["n"] == 4 * 3
        assert sharpness["mean"] is not None and sharpness["mean"] > 0
    assert FD_LABEL in (tmp_path / "eval" / "table.md").read_text()
    assert "Sharpness→1" in (tmp_path / "eval" / "table.md").read_text()
    assert (tmp_path / "eval" / "plots" / "fd_mobilenet.png").is_file()
    study = build_study(tmp_path / "eval")
    assert len(study.triplets) == len(methods) * 4 * 2  # 4 videos, 2 saved frames each
    assert all(t.real_from_other_videos for t in study.triplets)  # each person has a second video
