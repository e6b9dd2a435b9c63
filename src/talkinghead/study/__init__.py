"""The paper's user study (§4, "USER") over an evaluation's saved frames: ``talkinghead study``.

Modules: `triplets` (the protocol: two real frames and one generated frame of one person, shuffled), `page` (the
HTML page, served or static), `server` (loopback server and static folder), `answers` (the fsync'd JSON-lines log),
`results` (USER accuracy per method with a 95% Wilson interval, raters, plot).

Files (default folder ``EVALUATION/study/``): ``study.json`` (the triplets, with which image is fake),
``answers.jsonl`` (one line per answer), ``results.{json,md,png}``.
"""

from talkinghead.study.answers import AnswerError, AnswerLog, check_answer, read_answers
from talkinghead.study.page import SERVED, STATIC, render_page
from talkinghead.study.results import (
    CHANCE,
    format_results,
    plot_results,
    study_results,
    wilson_interval,
    write_results,
)
from talkinghead.study.server import StudyServer, write_static
from talkinghead.study.triplets import (
    ANSWERS,
    MANIFEST,
    Study,
    Triplet,
    build_study,
    load_study,
    study_folder,
    write_study,
)

__all__ = ["ANSWERS", "CHANCE", "MANIFEST", "SERVED", "STATIC", "AnswerError", "AnswerLog", "Study", "StudyServer",
           "Triplet", "build_study", "check_answer", "format_results", "load_study", "plot_results", "read_answers",
           "render_page", "study_folder", "study_results", "wilson_interval", "write_results", "write_static",
           "write_study"]
