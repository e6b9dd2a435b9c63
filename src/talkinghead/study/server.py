"""Serving a study on loopback (Python's http.server; the study needs no Gradio), or writing it as a static folder.

Routes: ``/`` the page; ``/image/<triplet>/<slot>`` one of a triplet's images (only the study's files are served);
``/api/state?session=`` the session's plan (`triplets.rater_plan`: its triplets, order and slots per position)
and the triplets it answered; ``POST /api/answer`` one answer (JSON) to a triplet of the session's plan, appended
to ``answers.jsonl`` (fsync'd; a torn last line is cut off when the server opens it) before the reply.
"""

from __future__ import annotations

import json
import logging
import shutil
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from talkinghead.study.answers import SESSION_PATTERN, AnswerError, AnswerLog, check_answer
from talkinghead.study.page import SERVED, STATIC, image_url, render_page
from talkinghead.study.triplets import Study, rater_plan

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
DEFAULT_PORT = 7870
MAX_BODY = 4096


class StudyServer:
    """The study on ``http://127.0.0.1:port/`` (port 0: any free one). `start` returns the URL, `close` stops."""

    def __init__(self, study: Study, answers: str | Path, port: int = DEFAULT_PORT) -> None:
        self.study = study
        self.log = AnswerLog(answers, study)
        self.page = render_page(study, SERVED).encode("utf-8")
        root = Path(study.evaluation)
        self.images = {(t.id, slot): root / path for t in study.triplets for slot, path in enumerate(t.images)}
        self.port = port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> str:
        self._server = ThreadingHTTPServer((LOOPBACK, self.port), _handler(self))
        self._thread = threading.Thread(target=self._server.serve_forever, name="study-server", daemon=True)
        self._thread.start()
        return f"http://{LOOPBACK}:{self._server.server_address[1]}/"

    def plan(self, session: str) -> list[dict]:
        """The session's triplets in its order, each with the image slot to show at each position."""
        return [{"id": shown.triplet, "slots": list(shown.slots)} for shown in rater_plan(self.study, session)]

    def save(self, answer: dict) -> dict:
        """Store an answer to a triplet of the session's plan (`AnswerLog.append`); AnswerError otherwise."""
        record = check_answer(self.study, answer)
        if all(shown["id"] != record["triplet"] for shown in self.plan(record["session"])):
            raise AnswerError(f"triplet {record['triplet']} is not in the plan of session {record['session']}")
        return self.log.append(record)

    def serve_forever(self) -> None:
        """Start, print the URL, answer until Ctrl-C (or SIGTERM)."""
        from talkinghead.serving import serve_until_stopped

        url = self.start()
        print(f"talkinghead study on {url} ({len(self.study.triplets)} triplets; answers go to {self.log.path}; "
              "Ctrl-C stops)", flush=True)
        serve_until_stopped(self.close)

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> StudyServer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _handler(owner: StudyServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args) -> None:  # noqa: A002 (http.server's name)
            log.debug("study server: " + format, *args)

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def _json(self, status: int, value: dict) -> None:
            self._send(status, json.dumps(value).encode("utf-8"), "application/json")

        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            url = urlparse(self.path)
            parts = url.path.strip("/").split("/")
            if url.path in ("/", "/index.html"):
                self._send(HTTPStatus.OK, owner.page, "text/html; charset=utf-8")
            elif url.path == "/api/state":
                session = parse_qs(url.query).get("session", [""])[0]
                if not SESSION_PATTERN.match(session):
                    self._json(HTTPStatus.BAD_REQUEST, {"error": "session must be 8-64 letters, digits or '-'"})
                    return
                self._json(HTTPStatus.OK, {"study": owner.study.id, "plan": owner.plan(session),
                                           "answered": owner.log.answered(session)})
            elif len(parts) == 3 and parts[0] == "image" and parts[2] in ("0", "1", "2") and \
                    (parts[1], int(parts[2])) in owner.images:
                self._send(HTTPStatus.OK, owner.images[(parts[1], int(parts[2]))].read_bytes(), "image/png")
            else:
                self._send(HTTPStatus.NOT_FOUND, b"not found", "text/plain")

        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            if urlparse(self.path).path != "/api/answer":
                self._send(HTTPStatus.NOT_FOUND, b"not found", "text/plain")
                return
            length = int(self.headers.get("Content-Length") or 0)
            if not 0 < length <= MAX_BODY:
                self._json(HTTPStatus.BAD_REQUEST, {"error": f"an answer is 1 to {MAX_BODY} bytes of JSON"})
                return
            try:
                answer = json.loads(self.rfile.read(length))
                if not isinstance(answer, dict):
                    raise AnswerError("an answer is a JSON object")
                stored = owner.save(answer)
            except (json.JSONDecodeError, AnswerError) as error:
                self._json(HTTPStatus.BAD_REQUEST, {"error": str(error)})
                return
            self._json(HTTPStatus.OK, {"saved": stored["triplet"]})

    return Handler


def write_static(study: Study, folder: str | Path) -> Path:
    """A folder that works from a file URL: ``index.html`` (with `page.STATIC_PLANS` plans a rater's is drawn
    from) and ``images/<triplet>_<slot>.png`` (opaque names). Answers stay in the rater's browser until downloaded.
    Returns the page's path."""
    folder = Path(folder)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    root = Path(study.evaluation)
    for triplet in study.triplets:
        for slot, path in enumerate(triplet.images):
            shutil.copyfile(root / path, folder / image_url(triplet.id, slot, STATIC))
    page = folder / "index.html"
    page.write_text(render_page(study, STATIC), encoding="utf-8")
    return page
