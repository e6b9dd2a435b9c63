"""The study page in Debian's Chromium (headless, Playwright): a rater answers 10 triplets with scripted choices,
reloading the page halfway; the accuracy computed from the saved answers file equals what the choices imply, and
no answer is lost or doubled. A second test answers from the static folder opened as a file URL.

Skips without the browser on a user's machine; fails instead when TALKINGHEAD_REQUIRE_BROWSER=1 (CI).
"""

from __future__ import annotations

import pytest

from _browser import chromium
from _study_helpers import write_evaluation
from talkinghead.study import StudyServer, build_study, read_answers, study_results, write_static

CHOICES = (0, 1, 2, 2, 1, 0, 0, 0, 1, 2)
"""The scripted rater's picks (positions) for the first 10 triplets."""


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    with chromium(tmp_path_factory.mktemp("chromium-profile"), width=1000, height=700) as context:
        yield context


def _answer(page, study, choices) -> list[str]:
    """Click ``choices`` on the triplets the page shows; returns the triplet ids answered, in order."""
    shown = []
    for choice in choices:
        page.wait_for_function("document.getElementById('triplet').dataset.triplet !== ''")
        triplet = page.eval_on_selector("#triplet", "e => e.dataset.triplet")
        shown.append(triplet)
        page.click(f"button.choice[data-slot='{choice}']")
        page.wait_for_function(f"document.getElementById('triplet').dataset.triplet !== '{triplet}'")
    return shown


def _expected_correct(study, shown, choices) -> dict[str, int]:
    triplets = study.by_id()
    expected: dict[str, int] = {}
    for triplet_id, choice in zip(shown, choices, strict=True):
        row = triplets[triplet_id].row
        expected[row] = expected.get(row, 0) + int(choice == triplets[triplet_id].fake)
    return expected


def test_ten_scripted_answers_give_the_accuracy_they_imply(browser, tmp_path):
    study = build_study(write_evaluation(tmp_path / "eval"), seed=4)
    answers = tmp_path / "answers.jsonl"
    page = browser.new_page()
    with StudyServer(study, answers, port=0) as server:
        page.goto(server.start())
        shown = _answer(page, study, CHOICES[:6])
        assert len(read_answers(answers)) == 6  # saved as they came, before the page moved on
        page.reload()  # the same rater continues where they were
        assert page.inner_text("#progress").startswith("Set 7 of")
        shown += _answer(page, study, CHOICES[6:])
    page.close()
    assert shown == [t.id for t in study.triplets[:10]]
    stored = read_answers(answers)
    assert [a["triplet"] for a in stored] == shown and [a["choice"] for a in stored] == list(CHOICES)
    assert len({a["session"] for a in stored}) == 1 and all(0 <= a["seconds"] < 60 for a in stored)
    results = study_results(study, stored)
    assert results["answers"] == 10 and results["raters"] == 1
    expected = _expected_correct(study, shown, CHOICES)
    got = {r["row"]: r["correct"] for r in results["rows"] if r["answers"]}
    assert got == expected
    for row in results["rows"]:
        if row["answers"]:
            assert row["accuracy"] == pytest.approx(expected[row["row"]] / row["answers"])


def test_static_page_from_a_file_url_keeps_answers_for_download(browser, tmp_path):
    study = build_study(write_evaluation(tmp_path / "eval"), seed=5)
    index = write_static(study, tmp_path / "static")
    page = browser.new_page()
    page.goto(index.as_uri())
    shown = _answer(page, study, CHOICES[:3])
    page.reload()
    assert page.inner_text("#progress").startswith("Set 4 of")
    with page.expect_download() as download:
        page.click("#download")
    path = tmp_path / "downloaded.jsonl"
    download.value.save_as(path)
    page.close()
    stored = read_answers(path)
    assert [a["triplet"] for a in stored] == shown and [a["choice"] for a in stored] == list(CHOICES[:3])
    results = study_results(study, stored)
    assert {r["row"]: r["correct"] for r in results["rows"] if r["answers"]} == \
        _expected_correct(study, shown, CHOICES[:3])
