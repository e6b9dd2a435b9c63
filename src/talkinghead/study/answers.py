"""Answers of a user study: one JSON line per answer, appended and fsync'd as it comes, so a crash or a reload loses
none. A line holds the study id, a random session id (the only trace of the rater), the triplet, the position
chosen, the seconds taken and the time of the answer; whether it was right is computed from the study's triplets
when the results are made, never trusted from the page.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from pathlib import Path

from talkinghead.study.triplets import Study

SESSION_PATTERN = re.compile(r"^[A-Za-z0-9-]{8,64}$")


class AnswerError(ValueError):
    """An answer that does not fit the study (unknown triplet, bad choice, bad session id)."""


def check_answer(study: Study, answer: dict) -> dict:
    """The answer as it is stored, or `AnswerError` saying which field is wrong."""
    triplets = study.by_id()
    session, triplet, choice, seconds = (answer.get("session"), answer.get("triplet"), answer.get("choice"),
                                         answer.get("seconds"))
    if not isinstance(session, str) or not SESSION_PATTERN.match(session):
        raise AnswerError(f"session must be 8-64 letters, digits or '-', got {session!r}")
    if triplet not in triplets:
        raise AnswerError(f"unknown triplet {triplet!r} for study {study.id}")
    if choice not in (0, 1, 2) or isinstance(choice, bool):
        raise AnswerError(f"choice must be 0, 1 or 2, got {choice!r}")
    if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or not 0 <= seconds < 86400:
        raise AnswerError(f"seconds must be a number of seconds in [0, 86400), got {seconds!r}")
    if answer.get("study", study.id) != study.id:
        raise AnswerError(f"answer belongs to study {answer.get('study')!r}, not {study.id}")
    return {"study": study.id, "session": session, "triplet": triplet, "choice": int(choice),
            "seconds": round(float(seconds), 3),
            "answered_at": answer.get("answered_at") or time.strftime("%Y-%m-%dT%H:%M:%S%z")}


class AnswerLog:
    """``answers.jsonl``: append one answer at a time (flushed and fsync'd); one answer per (session, triplet)."""

    def __init__(self, path: str | Path, study: Study) -> None:
        self.path = Path(path)
        self.study = study
        self._lock = threading.Lock()

    def append(self, answer: dict) -> dict:
        """Check and store ``answer``; a second answer of a session to one triplet (a retried request) is not
        stored again. Returns the stored answer."""
        record = check_answer(self.study, answer)
        with self._lock:
            for previous in self.read():
                if previous["session"] == record["session"] and previous["triplet"] == record["triplet"]:
                    return previous
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
                handle.flush()
                os.fsync(handle.fileno())
        return record

    def read(self) -> list[dict]:
        return read_answers(self.path) if self.path.is_file() else []

    def answered(self, session: str) -> list[str]:
        """The triplets this session has answered, in answer order (what a reloaded page skips)."""
        return [a["triplet"] for a in self.read() if a["session"] == session]


def read_answers(path: str | Path) -> list[dict]:
    """Answers of a JSON-lines file (the served study's, or one a static page downloaded); a torn last line (a
    crash mid-write) is left out, any other bad line is an error naming the file and line."""
    path = Path(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    answers = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            answers.append(json.loads(line))
        except json.JSONDecodeError as error:
            if number == len(lines):
                continue
            raise ValueError(f"{path} line {number} is not JSON ({error}); remove or repair it") from error
    return answers
