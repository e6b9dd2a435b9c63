"""The study page in Debian's Chromium (headless, Playwright). Served: a rater answers 10 triplets with scripted
clicks, reloading the page halfway; the page shows exactly its session's plan (`rater_plan(study, session)`, the
session id being the one the page sends to ``api/state``: triplets, order and image slot at each position), the
reload continues that plan, each answer is in the answers file before the next triplet shows, and the accuracy
computed from the file equals what the clicks imply; another session gets its own plan. Static (a file URL): the
page shows one of the study's plans in an order of its own, keeps it over a reload, and the downloaded answers
give the accuracy the clicks imply.

Skips without the browser on a user's machine; fails instead when TALKINGHEAD_REQUIRE_BROWSER=1 (CI).
"""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlparse

import pytest

from _browser import chromium
from _study_helpers import write_evaluation
from talkinghead.study import (
    STATIC_PLANS,
    StudyServer,
    build_study,
    rater_plan,
    read_answers,
    study_results,
    write_static,
)

CHOICES = (0, 1, 2, 2, 1, 0, 0, 0, 1, 2)
"""The scripted rater's clicks (positions on screen) on the first 10 triplets shown."""


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    with chromium(tmp_path_factory.mktemp("chromium-profile"), width=1000, height=700) as context:
        yield context


def _answer(page, choices, saved) -> list[tuple[str, list[int]]]:
    """Click the positions ``choices`` on the triplets the page shows; returns what was shown, in order: each
    triplet's id and the image slot at each position. ``saved()`` counts the answers stored so far: each answer
    must be stored by the time the next triplet shows."""
    shown = []
    for choice in choices:
        _wait_shown(page)
        triplet = page.eval_on_selector("#triplet", "e => e.dataset.triplet")
        slots = page.eval_on_selector_all("button.choice", "bs => bs.map(b => Number(b.dataset.slot))")
        shown.append((triplet, slots))
        before = saved()
        page.click(f"button.choice[data-position='{choice}']")
        page.wait_for_function(f"document.getElementById('triplet').dataset.triplet !== '{triplet}'")
        assert saved() == before + 1, f"the answer to {triplet} was not stored before the next triplet showed"
    return shown


def _wait_shown(page) -> None:
    """Until a triplet is on screen (its images loaded: the page's state came and the progress line is set)."""
    page.wait_for_function("document.getElementById('triplet').dataset.triplet !== ''")


def _expected_correct(study, shown, choices) -> dict[str, int]:
    """Per report row, how many of the clicks hit the generated image (the slot at the clicked position)."""
    triplets = study.by_id()
    expected: dict[str, int] = {}
    for (triplet_id, slots), choice in zip(shown, choices, strict=True):
        row = triplets[triplet_id].row
        expected[row] = expected.get(row, 0) + int(slots[choice] == triplets[triplet_id].fake)
    return expected


def _check_results(study, stored, shown, choices) -> None:
    """The stored answers are the clicks (slot at the clicked position), and the results are what they imply."""
    assert [a["triplet"] for a in stored] == [t for t, _ in shown]
    assert [a["choice"] for a in stored] == [slots[c] for (_, slots), c in zip(shown, choices, strict=True)]
    assert len({a["session"] for a in stored}) == 1 and all(0 <= a["seconds"] < 60 for a in stored)
    results = study_results(study, stored)
    assert results["answers"] == len(choices) and results["raters"] == 1
    expected = _expected_correct(study, shown, choices)
    assert {r["row"]: r["correct"] for r in results["rows"] if r["answers"]} == expected
    answered = {r["row"]: r["answers"] for r in results["rows"] if r["answers"]}
    assert answered == {row: sum(study.by_id()[t].row == row for t, _ in shown) for row in expected}
    for row in results["rows"]:
        if row["answers"]:
            assert row["accuracy"] == pytest.approx(expected[row["row"]] / row["answers"])


def _session(page, study) -> str:
    return page.evaluate(f"localStorage.getItem('talkinghead-study-{study.id}-session')")


def test_ten_scripted_answers_follow_the_sessions_plan_and_give_the_accuracy_they_imply(browser, tmp_path):
    study = build_study(write_evaluation(tmp_path / "eval"), seed=4)
    answers = tmp_path / "answers.jsonl"
    asked: list[str] = []  # the session of each api/state request the page made
    page = browser.new_page()
    page.on("request", lambda request: asked.extend(
        parse_qs(urlparse(request.url).query).get("session", []) if "/api/state" in request.url else []))

    def saved() -> int:
        return len(read_answers(answers)) if answers.is_file() else 0

    with StudyServer(study, answers, port=0) as server:
        page.goto(server.start())
        first = _answer(page, CHOICES[:6], saved)
        session = _session(page, study)
        assert asked == [session]
        plan = [(shown.triplet, list(shown.slots)) for shown in rater_plan(study, session)]
        assert len(plan) >= len(CHOICES)
        assert first == plan[:6]  # its triplets, in its order, each image slot at its position
        page.reload()  # the same rater continues their plan where they were
        _wait_shown(page)
        assert page.inner_text("#progress") == f"Set 7 of {len(plan)}"
        second = _answer(page, CHOICES[6:], saved)
        assert asked == [session, session] and _session(page, study) == session
        assert second == plan[6:10]
        stored = read_answers(answers)
        with page.expect_navigation():  # the link clears the session and reloads the page
            page.click("#new-session")  # someone else: another session, another plan, from its start
        _wait_shown(page)
        other = _session(page, study)
        assert other != session and asked[-1] == other
        other_plan = rater_plan(study, other)
        assert other_plan != rater_plan(study, session)
        assert page.inner_text("#progress") == f"Set 1 of {len(other_plan)}"
        assert page.eval_on_selector("#triplet", "e => e.dataset.triplet") == other_plan[0].triplet
    page.close()
    assert all(a["session"] == session for a in stored)
    _check_results(study, stored, first + second, CHOICES)


def test_static_page_from_a_file_url_shows_one_of_the_plans_and_keeps_answers_for_download(browser, tmp_path):
    study = build_study(write_evaluation(tmp_path / "eval"), seed=5)
    index = write_static(study, tmp_path / "static")
    plans = [sorted(shown.triplet for shown in rater_plan(study, f"static-{k}")) for k in range(STATIC_PLANS)]
    page = browser.new_page()
    page.goto(index.as_uri())

    def saved() -> int:
        return len(page.evaluate(f"JSON.parse(localStorage.getItem('talkinghead-study-{study.id}-answers') || '[]')"))

    def stored_plan() -> list[tuple[str, list[int]]]:
        key = f"talkinghead-study-{study.id}-plan-{_session(page, study)}"
        return [(t["id"], t["slots"]) for t in json.loads(page.evaluate(f"localStorage.getItem('{key}')"))]

    first = _answer(page, CHOICES[:3], saved)
    session, plan = _session(page, study), stored_plan()
    assert sorted(t for t, _ in plan) in plans  # one of the study's plans, in an order of the page's own
    assert all(sorted(slots) == [0, 1, 2] for _, slots in plan)
    assert first == plan[:3]
    page.reload()
    _wait_shown(page)
    assert page.inner_text("#progress") == f"Set 4 of {len(plan)}"
    second = _answer(page, CHOICES[3:5], saved)
    assert _session(page, study) == session and stored_plan() == plan and second == plan[3:5]
    with page.expect_download() as download:
        page.click("#download")
    path = tmp_path / "downloaded.jsonl"
    download.value.save_as(path)
    page.close()
    stored = read_answers(path)
    assert all(a["session"] == session for a in stored)
    _check_results(study, stored, first + second, CHOICES[:5])
