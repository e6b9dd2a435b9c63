"""The local web app (`talkinghead app`): animate a portrait in the browser, without the command line.

Layers, so that the logic is tested without a browser:

* `workspace` (no Gradio): the app's one temporary folder (uploads, previews, results, saved avatars; removed
  on exit), the limits (upload size, video length, sources, fine-tuning steps) with messages that say what to
  do, and the confinement rule (a path that comes from a client is used only when it resolves inside the
  workspace).
* `studio` (no Gradio): the work itself: landmark and crop previews (drawn by `pictures`), personalization and
  animation with progress callbacks, saving and reusing avatars, a synthetic sample driver.
* `page`: the Gradio page over them: `PageHandlers` answers the events, `build_ui` lays out and wires the page.
  Gradio is the optional extra ``pip install -e ".[app]"``; it is imported only there.
* `server`: `AppServer`, the page on a port.

The server binds 127.0.0.1 unless told otherwise; Gradio's analytics and version check are off, and its upload
cache is the workspace (``GRADIO_TEMP_DIR``), so uploads and results never leave that folder.
"""

from talkinghead.app.page import INSTALL_HINT, AppUnavailable, PageHandlers, build_ui
from talkinghead.app.pictures import (
    PREVIEW_SIDE,
    SAMPLE_DRIVER,
    annotate_picture,
    overlay_landmarks,
    write_sample_driver,
)
from talkinghead.app.server import DEFAULT_PORT, LOOPBACK, AppServer
from talkinghead.app.studio import Animation, Progress, Session, Studio
from talkinghead.app.workspace import (
    AVATAR_SUFFIXES,
    IMAGE_SUFFIXES,
    MB,
    VIDEO_SUFFIXES,
    LimitError,
    Limits,
    OutsideWorkspaceError,
    Workspace,
)

__all__ = ["AVATAR_SUFFIXES", "DEFAULT_PORT", "IMAGE_SUFFIXES", "INSTALL_HINT", "LOOPBACK", "MB", "PREVIEW_SIDE",
           "SAMPLE_DRIVER", "VIDEO_SUFFIXES", "Animation", "AppServer", "AppUnavailable", "LimitError", "Limits",
           "OutsideWorkspaceError", "PageHandlers", "Progress", "Session", "Studio", "Workspace", "annotate_picture",
           "build_ui", "overlay_landmarks", "write_sample_driver"]
