"""The user study (issues 18 and 24) without a browser: triplets follow the paper's protocol (real frames from the
person's other videos), each rater gets an order and fake positions of their own and sees a real frame at most
twice, answers are stored once and survive a torn write, USER accuracy with its interval over raters, the loopback
server, the static folder, the command."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections import Counter

import pytest

from _study_helpers import METHODS, ONE_VIDEO_EACH, VIDEOS, write_evaluation
from talkinghead.study import (
    BAD_LINE,
    MAX_REAL_VIEWS,
    OTHER_VIDEOS,
    SAME_VIDEO,
    STATIC_PLANS,
    AnswerError,
    AnswerLog,
    StudyServer,
    build_study,
    format_results,
    load_study,
    rater_bootstrap_interval,
    rater_plan,
    read_answers,
    study_results,
    wilson_interval,
    write_static,
    write_study,
)

SESSIONS = [f"{k:032x}" for k in range(40)]


@pytest.fixture()
def evaluation(tmp_path):
    return write_evaluation(tmp_path / "eval")


def _video_of(path: str) -> str:
    return path.split("/")[1]


def test_triplets_hold_two_real_frames_of_the_persons_other_videos_and_one_generated(evaluation):
    study = build_study(evaluation, seed=1)
    identity_of = {key.replace("/", "_"): identity for key, identity, _ in VIDEOS}
    with_two_videos = [(key, frames) for key, identity, frames in VIDEOS if identity != "carl"]
    assert len(study.triplets) == len(METHODS) * sum(len(f) for _, f in with_two_videos)
    assert study.reals == OTHER_VIDEOS and study.left_out == ("carl",)
    positions = set()
    uses: Counter[str] = Counter()
    for triplet in study.triplets:
        fake = triplet.images[triplet.fake]
        assert fake.endswith(f"/T1/{triplet.method}/{triplet.frame:06d}.png")
        assert all("/real/" in p for p in triplet.reals) and len(set(triplet.reals)) == 2
        assert {identity_of[_video_of(p)] for p in triplet.reals} == {triplet.identity}
        assert triplet.real_from_other_videos
        assert all(_video_of(p) != triplet.video.replace("/", "_") for p in triplet.reals)
        uses.update(triplet.reals)
        positions.add(triplet.fake)
    assert positions == {0, 1, 2}
    assert max(uses.values()) - min(uses.values()) <= 1  # the least used reals first: they share the triplets
    assert build_study(evaluation, seed=1) == study and build_study(evaluation, seed=2).id != study.id
    limited = build_study(evaluation, seed=1, per_row=2)
    assert sorted(t.row for t in limited.triplets) == sorted(f"{m} (1)" for m in METHODS for _ in range(2))


def test_reals_never_come_from_the_fakes_own_video_unless_asked_and_labelled(tmp_path):
    """Issue 24: with one video per person (evaluate --per-identity 1) the real frames came from the fake's own
    video, the same few in every triplet. The paper's protocol now refuses; same-video reals must be asked for,
    and the study, results.json and results.md say which protocol it was."""
    evaluation = write_evaluation(tmp_path / "eval", ONE_VIDEO_EACH)
    with pytest.raises(ValueError, match="--per-identity 1"):
        build_study(evaluation)
    study = build_study(evaluation, same_video_reals=True)
    assert study.reals == SAME_VIDEO and len(study.triplets) == len(METHODS) * 8
    for triplet in study.triplets:
        own = triplet.video.replace("/", "_")
        assert not triplet.real_from_other_videos and {_video_of(p) for p in triplet.reals} == {own}
        assert f"frames/{own}/real/{triplet.frame:06d}.png" not in triplet.reals  # never its ground truth
    write_study(study, tmp_path / "s")
    assert load_study(tmp_path / "s") == study
    results = study_results(study, [])
    assert results["reals"] == SAME_VIDEO and "NOT the paper's protocol" in results["protocol"]
    assert "Same-video reals: not the paper's protocol" in format_results(results)
    paper = study_results(build_study(write_evaluation(tmp_path / "mixed")), [])
    assert paper["reals"] == OTHER_VIDEOS and paper["left_out"] == ["carl"]
    assert "Same-video" not in format_results(paper) and "Left out" in format_results(paper)


def test_no_rater_sees_a_real_frame_more_than_twice(evaluation):
    study = build_study(evaluation)
    triplets = study.by_id()
    shown_anywhere = set()
    for session in SESSIONS:
        plan = rater_plan(study, session)
        ids = [shown.triplet for shown in plan]
        assert len(ids) == len(set(ids)) and len(ids) >= 12
        views = Counter(path for i in ids for path in triplets[i].reals)
        assert max(views.values()) <= MAX_REAL_VIEWS
        shown_anywhere.update(ids)
    assert shown_anywhere == set(triplets)  # every triplet reaches some rater


def test_each_rater_gets_an_order_and_fake_positions_of_their_own(evaluation):
    study = build_study(evaluation)
    triplets = study.by_id()
    plans = {session: rater_plan(study, session) for session in SESSIONS}
    assert rater_plan(study, SESSIONS[0]) == plans[SESSIONS[0]]  # a reload continues the same plan
    orders = {tuple(shown.triplet for shown in plan) for plan in plans.values()}
    assert len(orders) == len(SESSIONS)
    position_of: dict[str, set[int]] = {}
    on_screen: Counter[int] = Counter()
    for plan in plans.values():
        for shown in plan:
            assert sorted(shown.slots) == [0, 1, 2]
            position = shown.slots.index(triplets[shown.triplet].fake)
            position_of.setdefault(shown.triplet, set()).add(position)
            on_screen[position] += 1
    assert sum(len(p) > 1 for p in position_of.values()) > len(position_of) // 2  # the fake moves between raters
    assert min(on_screen.values()) > 0.25 * sum(on_screen.values())
    with StudyServer(study, evaluation / "answers.jsonl", port=0) as server:
        url = server.start()
        first = json.loads(_request(f"{url}api/state?session={SESSIONS[0]}")[1])["plan"]
        second = json.loads(_request(f"{url}api/state?session={SESSIONS[1]}")[1])["plan"]
    assert [(s["id"], tuple(s["slots"])) for s in first] == [(s.triplet, s.slots) for s in plans[SESSIONS[0]]]
    assert [s["id"] for s in first] != [s["id"] for s in second]


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


def test_the_interval_on_user_accuracy_resamples_raters(evaluation):
    assert rater_bootstrap_interval([10], [10]) is None  # one rater: nothing to resample
    assert rater_bootstrap_interval([10, 0], [10, 10]) == (0.0, 1.0)
    assert rater_bootstrap_interval([3, 3, 3], [9, 9, 9]) == pytest.approx((1 / 3, 1 / 3))
    assert rater_bootstrap_interval([1, 2, 5, 0], [5, 5, 5, 5]) == rater_bootstrap_interval([1, 2, 5, 0], [5] * 4)
    study = build_study(evaluation)
    triplets = study.by_id()
    answers = []
    for session, right in (("a" * 32, True), ("b" * 32, False)):  # one rater always right, one never
        for shown in rater_plan(study, session):
            fake = triplets[shown.triplet].fake
            answers.append({"session": session, "triplet": shown.triplet, "choice": fake if right else (fake + 1) % 3,
                            "seconds": 1.0})
    results = study_results(study, answers)
    assert results["bootstrap"] == {"resamples": 2000, "seed": 0, "unit": "rater (session)"}
    for row in results["rows"]:
        if row["raters"] == 2:
            assert row["low"] == 0.0 and row["high"] == 1.0  # two raters who disagree: the interval says so
            assert 0.0 < row["wilson_low"] < row["wilson_high"] < 1.0  # over answers it looks far more certain
    assert "bootstrap over raters (2000 resamples" in format_results(results)


def test_answers_are_stored_once_checked_and_bad_lines_are_counted(evaluation, tmp_path):
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
        handle.write('[1, 2]\n{"session": "c", "triplet": "nope", "choice": 0, "seconds": 1}\n')
        handle.write('{"session": "torn')  # a crash mid-write
    entries = read_answers(log.path)
    assert len(entries) == 6 and [BAD_LINE in e for e in entries] == [False, False, False, True, False, True]
    results = study_results(study, entries)
    assert results["answers"] == 3 and results["raters"] == 2 and results["bad_lines"] == 3
    assert len(results["skipped"]) == 3 and "Bad lines skipped: 3" in format_results(results)
    row = next(r for r in results["rows"] if r["method"] == first.method)
    assert row["correct"] >= 1 and row["raters"] == 2
    assert sum(r["correct"] for r in results["rows"]) == 1  # only session a's first answer to the first triplet
    with pytest.raises(AnswerError, match="another study"):
        study_results(study, [{**entries[0], "study": "0" * 16}])


def _request(url, data=None):
    request = urllib.request.Request(url, data=json.dumps(data).encode() if data is not None else None,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, response.read()


def test_an_answer_after_a_torn_line_is_saved_and_read_back(evaluation, tmp_path):
    """Issue 24: a crash mid-write left a torn last line; the next answer was appended onto it (lost, while the
    page said "saved") and every later read failed. Torn before the server opens the file, and torn while it runs
    (a write that failed), every answer the server acknowledged is read back."""
    study = build_study(evaluation)
    session = "f" * 32
    plan = rater_plan(study, session)
    triplets = study.by_id()
    path = tmp_path / "answers.jsonl"
    path.write_text(json.dumps({"study": study.id, "session": session, "triplet": plan[0].triplet, "choice": 0,
                                "seconds": 1.0}) + '\n{"study": "' + study.id + '", "sess')
    posted = [plan[0].triplet]
    with StudyServer(study, path, port=0) as server:
        url = server.start()
        for shown in plan[1:3]:
            assert _request(f"{url}api/answer", {"session": session, "triplet": shown.triplet,
                                                 "choice": triplets[shown.triplet].fake, "seconds": 2.0})[0] == 200
            posted.append(shown.triplet)
        with open(path, "a") as handle:
            handle.write('{"study": "' + study.id + '", "session": "')  # a write that failed half-way
        for shown in plan[3:5]:
            assert _request(f"{url}api/answer", {"session": session, "triplet": shown.triplet, "choice": 1,
                                                 "seconds": 3.0})[0] == 200
            posted.append(shown.triplet)
        state = json.loads(_request(f"{url}api/state?session={session}")[1])
    assert state["answered"] == posted
    entries = read_answers(path)
    assert [e["triplet"] for e in entries if BAD_LINE not in e] == posted
    results = study_results(study, entries)
    assert results["answers"] == 5 and results["bad_lines"] == 1  # the torn line of the running server


def test_server_saves_answers_serves_only_study_images_and_hides_the_answer(evaluation, tmp_path):
    study = build_study(evaluation)
    with StudyServer(study, tmp_path / "answers.jsonl", port=0) as server:
        url = server.start()
        status, page = _request(url)
        text = page.decode()
        assert status == 200 and study.id in text
        for secret in (*METHODS, "real", "frames/", '"fake"'):
            assert secret not in text.split("<script>")[1].split("const PREFIX")[0]
        session = "d" * 32
        triplet = study.by_id()[rater_plan(study, session)[0].triplet]
        status, image = _request(f"{url}image/{triplet.id}/{triplet.fake}")
        assert status == 200 and image == (evaluation / triplet.images[triplet.fake]).read_bytes()
        for missing in ("image/nope/0", "image/../splits.json", f"image/{triplet.id}/3", "frames/x.png"):
            with pytest.raises(urllib.error.HTTPError, match="404"):
                _request(url + missing)
        assert _request(f"{url}api/answer", {"session": session, "triplet": triplet.id, "choice": 1,
                                             "seconds": 2.5})[0] == 200
        with pytest.raises(urllib.error.HTTPError, match="400"):
            _request(f"{url}api/answer", {"session": session, "triplet": triplet.id, "choice": 7, "seconds": 1})
        not_shown = next(t for t in study.triplets if t.id not in {s.triplet for s in rater_plan(study, session)})
        with pytest.raises(urllib.error.HTTPError, match="400"):  # not a triplet this rater was shown
            _request(f"{url}api/answer", {"session": session, "triplet": not_shown.id, "choice": 1, "seconds": 1})
        with pytest.raises(urllib.error.HTTPError, match="400"):
            _request(f"{url}api/state?session=x")
        state = json.loads(_request(f"{url}api/state?session={session}")[1])
        assert state["answered"] == [triplet.id] and "fake" not in json.dumps(state)
    stored = read_answers(tmp_path / "answers.jsonl")
    assert [(a["triplet"], a["choice"], a["seconds"]) for a in stored] == [(triplet.id, 1, 2.5)]


def test_static_folder_has_opaque_images_no_answers_and_plans_within_the_real_frame_limit(evaluation, tmp_path):
    study = build_study(evaluation)
    page = write_static(study, tmp_path / "static")
    html = page.read_text()
    assert '"mode": "static"' in html and "localStorage" in html
    config = json.loads(html.split("const CONFIG = ")[1].split(";\n")[0])
    assert not any(m in json.dumps(config) for m in METHODS) and "fake" not in json.dumps(config)
    assert len(config["plans"]) == STATIC_PLANS and len({tuple(p) for p in config["plans"]}) > 1
    triplets = study.by_id()
    for plan in config["plans"]:
        assert max(Counter(path for i in plan for path in triplets[i].reals).values()) <= MAX_REAL_VIEWS
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
                                           "seconds": 1.0}) + "\n" for t in study.triplets[:4]) + "not json\n")
    assert main(["study", str(evaluation), "--results", "--answers", str(answers)]) == 0
    out = capsys.readouterr().out
    assert "4 answers from 1 rater(s)" in out and "| 1.000 |" in out and "Bad lines skipped: 1" in out
    assert f"Protocol: **{OTHER_VIDEOS}**" in out
    assert (evaluation / "study" / "results.png").is_file()
    written = json.loads((evaluation / "study" / "results.json").read_text())
    assert written["answers"] == 4 and written["bad_lines"] == 1 and written["reals"] == OTHER_VIDEOS
    assert main(["study", str(tmp_path / "nothing"), "--results"]) == 2



def test_command_builds_a_same_video_study_only_when_asked_and_labels_it(tmp_path, capsys):
    from talkinghead.cli import main

    evaluation = write_evaluation(tmp_path / "eval", ONE_VIDEO_EACH)
    assert main(["study", str(evaluation), "--static", str(tmp_path / "static")]) == 2
    assert "--per-identity 1" in capsys.readouterr().err
    assert not (evaluation / "study" / "study.json").exists() and not (tmp_path / "static").exists()
    assert main(["study", str(evaluation), "--static", str(tmp_path / "static"), "--same-video-reals"]) == 0
    assert f"{len(METHODS) * 8} triplets" in capsys.readouterr().out
    study = load_study(evaluation / "study")
    assert study.reals == SAME_VIDEO and not any(t.real_from_other_videos for t in study.triplets)
    assert "NOT the paper's protocol" in json.loads((evaluation / "study" / "study.json").read_text())["protocol"]
    assert main(["study", str(evaluation), "--results"]) == 0
    assert "Same-video reals: not the paper's protocol" in capsys.readouterr().out
    assert json.loads((evaluation / "study" / "results.json").read_text())["reals"] == SAME_VIDEO

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
    assert {"copy-source", "mesh-warp", "ours-FF"} <= methods  # and whatever baselines the evaluation adds
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
