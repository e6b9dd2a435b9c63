"""`AppServer`: the page served on ``host:port`` (127.0.0.1 unless told otherwise), with its workspace as Gradio's
upload folder; `close` stops it and removes the workspace."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

from talkinghead.app.page import _gradio, build_ui
from talkinghead.app.studio import Studio
from talkinghead.app.workspace import MB, Limits, Workspace

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
DEFAULT_PORT = 7860


class AppServer:
    """The app on ``host:port``: a workspace, the model, the page. `start` returns the URL; `close` stops the
    server and removes the workspace. Use as a context manager, or `serve_forever` for the command."""

    def __init__(self, checkpoint: str | os.PathLike[str] | None = None, host: str = LOOPBACK,
                 port: int = DEFAULT_PORT, limits: Limits | None = None, device: str = "cpu",
                 head=None, finetune_overrides: Sequence[str] = ()) -> None:
        self.host = host
        self.finetune_overrides = list(finetune_overrides)
        self.port = port
        self.limits = limits or Limits()
        self.checkpoint = checkpoint
        self.device = device
        self._head = head
        self.workspace: Workspace | None = None
        self.ui = None
        self.url: str | None = None
        self._saved_temp_dir: str | None = None
        self._temp_dir_set = False

    def start(self) -> str:
        _gradio()  # fail before any work when the extra is missing
        logging.getLogger("httpx").setLevel(logging.WARNING)  # Gradio's requests to itself are not news
        if not _is_loopback(self.host):
            log.warning("listening on %s: anyone who can reach this machine can use the app and upload files; "
                        "the default, %s, keeps it to this computer", self.host, LOOPBACK)
        self.workspace = Workspace(self.limits)
        try:
            studio = (Studio(self.workspace, self._head, self.device) if self._head is not None
                      else Studio.from_checkpoint(self.workspace, self.checkpoint, self.device,
                                                  self.finetune_overrides))
            self._saved_temp_dir = os.environ.get("GRADIO_TEMP_DIR")
            os.environ["GRADIO_TEMP_DIR"] = str(self.workspace.root)  # Gradio's uploads land in the workspace
            self._temp_dir_set = True
            self.ui = build_ui(studio)
            self.ui.queue(default_concurrency_limit=1)
            _, url, _ = self.ui.launch(server_name=self.host, server_port=self.port, prevent_thread_lock=True,
                                       max_file_size=int(self.limits.upload_mb * MB), share=False,
                                       ssr_mode=False, quiet=True, show_error=True, inbrowser=False,
                                       allowed_paths=[], footer_links=["gradio"], mcp_server=False)
        except BaseException:
            self.close()
            raise
        self.url = url
        return url

    def serve_forever(self) -> None:
        """Start, print the URL, run until Ctrl-C (or SIGTERM), then clean up."""
        from talkinghead.serving import serve_until_stopped

        url = self.start()
        print(f"talkinghead app on {url} (Ctrl-C stops it and removes {self.workspace.root})", flush=True)
        serve_until_stopped(self.close, stopping_message="stopping")

    def close(self) -> None:
        if self.ui is not None:
            self.ui.close()
            self.ui = None
        if self._temp_dir_set:
            if self._saved_temp_dir is None:
                os.environ.pop("GRADIO_TEMP_DIR", None)
            else:
                os.environ["GRADIO_TEMP_DIR"] = self._saved_temp_dir
            self._temp_dir_set = False
        if self.workspace is not None:
            self.workspace.close()

    def __enter__(self) -> AppServer:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
