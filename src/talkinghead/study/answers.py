"""Answers of a user study: one JSON line per answer, appended and fsync'd as it comes, so a crash or a reload loses
none. A line holds the study id, a random session id (the only trace of the rater), the triplet, the image slot
chosen, the seconds taken and the time of the answer; whether it was right is computed from the study's triplets
when the results are made, never trusted from the page.

A crash in the middle of a write leaves a torn last line (no newline). `AnswerLog` cuts it off when it opens the
file (the answer on it was never acknowledged, so the page still shows that triplet and sends it again), and an
append starts on a new line whenever the file does not end with one, so an answer is never merged into a torn
line. Reading never stops at a bad line: `read_answers` returns it as a marker that the results count.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
from pathlib import Path

from talkinghead.study.triplets import Study

log = logging.getLogger(__name__)

SESSION_PATTERN = re.compile(r"^[A-Za-z0-9-]{8,64}$")
BAD_LINE = "bad_line"
"""Key of the marker `read_answers` returns for a line that is not an answer: {"bad_line": "FILE:LINE",
"reason": ...}."""


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


def repair_torn_line(path: str | Path) -> int:
    """Cut a torn last line (bytes after the last newline) off ``path``; returns how many bytes were cut."""
    path = Path(path)
    if not path.is_file():
        return 0
    data = path.read_bytes()
    if not data or data.endswith(b"\n"):
        return 0
    keep = data.rfind(b"\n") + 1
    with open(path, "r+b") as handle:
        handle.truncate(keep)
        handle.flush()
        os.fsync(handle.fileno())
    log.warning("%s: cut off a torn last line (%d bytes, a write interrupted by a crash): %r", path,
                len(data) - keep, data[keep:keep + 80])
    return len(data) - keep


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as handle:
        size = handle.seek(0, os.SEEK_END)
        if size == 0:
            return True
        handle.seek(size - 1)
        return handle.read(1) == b"\n"


class AnswerLog:
    """``answers.jsonl``: append one answer at a time (flushed and fsync'd); one answer per (session, triplet).
    Opening it cuts off a torn last line (`repaired`: how many bytes)."""

    def __init__(self, path: str | Path, study: Study) -> None:
        self.path = Path(path)
        self.study = study
        self._lock = threading.Lock()
        self.repaired = repair_torn_line(self.path)

    def append(self, answer: dict) -> dict:
        """Check and store ``answer``; a second answer of a session to one triplet (a retried request) is not
        stored again. Returns the stored answer."""
        record = check_answer(self.study, answer)
        line = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
        with self._lock:
            for previous in self.read():
                if previous.get("session") == record["session"] and previous.get("triplet") == record["triplet"]:
                    return previous
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if self.path.is_file() and not _ends_with_newline(self.path):
                line = b"\n" + line  # a torn line (an earlier write failed): never continue it
            with open(self.path, "ab") as handle:
                handle.write(line)
                handle.flush()
                os.fsync(handle.fileno())
        return record

    def read(self) -> list[dict]:
        """The stored answers (bad lines left out)."""
        if not self.path.is_file():
            return []
        return [entry for entry in read_answers(self.path) if BAD_LINE not in entry]

    def answered(self, session: str) -> list[str]:
        """The triplets this session has answered, in answer order (what a reloaded page skips)."""
        return [a["triplet"] for a in self.read() if a.get("session") == session]


def read_answers(path: str | Path) -> list[dict]:
    """The lines of a JSON-lines answers file (the served study's, or one a static page downloaded), in order.
    A line that is not a JSON object (a torn line, an edit gone wrong) does not stop the reading: it comes back as
    {"bad_line": "FILE:LINE", "reason": ...}, so that `study_results` counts it in the results; check an entry
    with ``BAD_LINE in entry`` before using it as an answer."""
    path = Path(path)
    entries = []
    for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            reason = None if isinstance(entry, dict) else f"a JSON {type(entry).__name__}, not an object"
        except json.JSONDecodeError as error:
            reason = f"not JSON ({error})"
        if reason is None:
            entries.append(entry)
        else:
            log.warning("%s line %d skipped: %s", path, number, reason)
            entries.append({BAD_LINE: f"{path}:{number}", "reason": reason})
    return entries
