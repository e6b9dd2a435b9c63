"""The paper's user study (§4, "USER") over an evaluation's saved frames: ``talkinghead study``.

Modules: `triplets` (the protocol: two real frames of the person's other videos and one generated frame; each
rater's own order, positions and at most two views of a real frame), `page` (the HTML page, served or static),
`server` (loopback server and static folder), `answers` (the fsync'd JSON-lines log, torn lines cut off),
`results` (USER accuracy per method with a 95% bootstrap interval over raters and the Wilson interval, plot).

Files (default folder ``EVALUATION/study/``): ``study.json`` (the triplets, with which image is fake),
``answers.jsonl`` (one line per answer), ``results.{json,md,png}``.
"""

from talkinghead.study.answers import BAD_LINE, AnswerError, AnswerLog, check_answer, read_answers, repair_torn_line
from talkinghead.study.page import SERVED, STATIC, STATIC_PLANS, render_page
from talkinghead.study.results import (
    BOOTSTRAP_RESAMPLES,
    BOOTSTRAP_SEED,
    CHANCE,
    format_results,
    plot_results,
    rater_bootstrap_interval,
    study_results,
    wilson_interval,
    write_results,
)
from talkinghead.study.server import StudyServer, write_static
from talkinghead.study.triplets import (
    ANSWERS,
    MANIFEST,
    MAX_REAL_VIEWS,
    OTHER_VIDEOS,
    SAME_VIDEO,
    Shown,
    Study,
    Triplet,
    build_study,
    load_study,
    rater_plan,
    study_folder,
    write_study,
)

__all__ = ["ANSWERS", "BAD_LINE", "BOOTSTRAP_RESAMPLES", "BOOTSTRAP_SEED", "CHANCE", "MANIFEST", "MAX_REAL_VIEWS",
           "OTHER_VIDEOS", "SAME_VIDEO", "SERVED", "STATIC", "STATIC_PLANS", "AnswerError", "AnswerLog", "Shown",
           "Study", "StudyServer", "Triplet", "build_study", "check_answer", "format_results", "load_study",
           "plot_results", "rater_bootstrap_interval", "rater_plan", "read_answers", "render_page",
           "repair_torn_line", "study_folder", "study_results", "wilson_interval", "write_results", "write_static",
           "write_study"]
