"""The Gradio page over a `Studio`: `PageHandlers` answers the page's events (named methods, no Gradio layout),
`build_ui` lays out the page and wires the events to them. Gradio is the optional extra
``pip install -e ".[app]"``; it is imported only here (through `_gradio`), so the rest of `talkinghead` works
without it."""

from __future__ import annotations

import os
import time

from talkinghead.app.studio import Session, Studio
from talkinghead.app.workspace import AVATAR_SUFFIXES, IMAGE_SUFFIXES, VIDEO_SUFFIXES

INSTALL_HINT = 'pip install -e ".[app]"'


class AppUnavailable(ImportError):
    """The web app's optional dependencies are not installed; the message says what to install."""


def _gradio():
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # no telemetry, no version check: the app works offline
    try:
        import gradio
    except ImportError as error:
        raise AppUnavailable(f"the web app needs Gradio, an optional extra: {INSTALL_HINT} ({error})") from error
    return gradio


class PageHandlers:
    """What each event of the page does: the Gradio callbacks, one method each, over the studio and workspace.

    Methods return the values of their event's outputs (in `build_ui`'s order); errors a user can fix become
    `gradio.Error` with the workspace's folders removed from the message.
    """

    def __init__(self, studio: Studio, gr) -> None:
        self.studio = studio
        self.workspace = studio.workspace
        self.gr = gr

    def user_error(self, error: Exception):
        return self.gr.Error(self.workspace.public(str(error)), print_exception=False)

    def forget(self, session: Session | None) -> None:
        """Remove a session's latest run folder (a new result replaces it; a closed session leaves it behind)."""
        if session is not None and session.run is not None:
            self.workspace.discard(session.run)

    def refuse(self, error: Exception) -> str:
        """An upload that cannot be used: a notice now, and the reason kept beside the cleared upload."""
        message = self.workspace.public(str(error))
        self.gr.Warning(message)
        return f"**Refused:** {message}"

    def on_sources(self, files):
        """Sources uploaded -> (the upload, or None to clear a refused one; preview gallery; message)."""
        if not files:
            return self.gr.update(), [], ""
        try:
            items, problems = self.studio.preview_sources(files)
        except (ValueError, OSError) as error:
            return None, [], self.refuse(error)
        return self.gr.update(), items, (f"**No face found:**\n\n{problems}" if problems else "")

    def on_driver(self, video):
        """Driver uploaded -> (the upload, or None to clear a refused one; first frame with landmarks; caption)."""
        if not video:
            return self.gr.update(), None, ""
        try:
            image, caption = self.studio.preview_driver(video)
        except (ValueError, OSError, RuntimeError) as error:
            return None, None, self.refuse(error)
        return self.gr.update(), image, caption

    def on_sample(self) -> str:
        return str(self.studio.sample_driver())

    def on_avatar_upload(self, file):
        """An .avatar uploaded -> (saved-avatar choices with it picked, "who" switched to the saved avatar)."""
        gr = self.gr
        if not file:
            return gr.update(), gr.update()
        try:
            name = self.workspace.import_avatar(file)
        except (ValueError, OSError, RuntimeError) as error:
            raise self.user_error(error) from error
        return gr.update(choices=self.workspace.saved_avatars(), value=name), gr.update(value="saved avatar")

    def on_animate(self, session, who, files, saved, personalization, steps, driver, mode, side, paste,
                   progress=None):
        """Animate -> (the session with its new run and avatar, the result video, its file, a status line)."""
        studio = self.studio
        session = session or Session()
        started = time.perf_counter()
        progress = progress if progress is not None else (lambda *args, **kwargs: None)

        def report(stage: str, done: int, total: int | None) -> None:
            progress((done, total), desc=stage, unit="steps" if stage == "fine-tuning" else "frames")

        try:
            if not driver:
                raise ValueError("upload a driving video (or use the sample driver)")
            self.workspace.check_upload(driver, "video")
            if who == "saved avatar":
                if not saved:
                    raise ValueError("pick a saved avatar (or upload an .avatar file), or choose 'pictures'")
                avatar = studio.load_avatar(saved)
                description = f"saved avatar {saved!r}"
            else:
                fine_tuned = personalization == "fine-tuned"
                progress(0, desc="finding the face" + (" and fine-tuning" if fine_tuned else ""))
                avatar = studio.make_avatar(files, steps=int(steps) if fine_tuned else 0, progress=report)
                info = avatar.info
                description = (f"{info['mode']} avatar from {info['shots']} picture(s)"
                               + (f", {info['steps']} steps" if info["mode"] == "fine-tuned" else ""))
            result = studio.animate(avatar, driver, mode=mode, side_by_side=side, paste_back=paste,
                                    progress=report, started=started)
        except (ValueError, OSError, RuntimeError) as error:
            raise self.user_error(error) from error
        self.forget(session)
        session = Session(run=result.path.parent, avatar=avatar, description=description)
        held = f"; {result.held} frames without a face held the last landmarks" if result.held else ""
        status = (f"**Done** in {result.seconds:.1f} s: {result.frames} frames at {result.fps:.3g} fps, "
                  f"{mode} motion, {description}{held}. Play it above; download it with the button on the video "
                  "or the file below.")
        return session, str(result.path), str(result.path), status

    def on_save(self, session, name):
        """Save -> (the avatar file, saved-avatar choices with it picked, a message)."""
        if session is None or session.avatar is None:
            raise self.gr.Error("animate first: the avatar of the latest animation is the one saved",
                                print_exception=False)
        path = self.workspace.save_avatar(session.avatar, name)
        return (str(path), self.gr.update(choices=self.workspace.saved_avatars(), value=path.stem),
                f"Saved avatar **{path.stem}** ({session.description}); pick it under *saved avatar* to reuse it, "
                "and download the file to keep it after the app stops.")


def build_ui(studio: Studio):
    """The page: who (pictures or a saved avatar), the driver, options, the result; returns a `gradio.Blocks`.
    The workspace must be Gradio's upload folder before this is called (`AppServer` does it)."""
    gr = _gradio()
    handlers = PageHandlers(studio, gr)
    limits = studio.limits
    workspace = studio.workspace
    has_model = studio.head is not None

    def on_animate(session, who, files, saved, personalization, steps, driver, mode, side, paste,
                   progress=gr.Progress()):  # Gradio injects the progress tracker by this default
        return handlers.on_animate(session, who, files, saved, personalization, steps, driver, mode, side, paste,
                                   progress)

    note = ("" if has_model else "**Started without `--checkpoint`:** only saved or uploaded avatars can be "
            "animated. ")
    with gr.Blocks(title="talkinghead", analytics_enabled=False) as ui:
        session = gr.State(None, delete_callback=handlers.forget)
        gr.Markdown(
            "# talkinghead: animate a portrait\n"
            f"{note}Uploads up to {limits.upload_mb:g} MB, videos up to {limits.video_seconds:g} s, "
            f"up to {limits.sources} pictures. Results carry a visible *synthetic* mark. Animate only people who "
            "consented, never to deceive. Files live in a temporary folder removed when the app stops.")
        with gr.Row():
            with gr.Column():
                gr.Markdown("### 1. Who")
                who = gr.Radio(["pictures", "saved avatar"], value="pictures" if has_model else "saved avatar",
                               label="Animate", elem_id="who")
                sources = gr.File(file_count="multiple", file_types=sorted(IMAGE_SUFFIXES | VIDEO_SUFFIXES),
                                  label="Pictures of one person (or one video of them)", elem_id="sources",
                                  interactive=has_model)
                personalization = gr.Radio(["feed-forward", "fine-tuned"], value="feed-forward",
                                           label="Personalization", elem_id="personalization")
                steps = gr.Slider(1, limits.steps, value=min(40, limits.steps), step=1,
                                  label="Fine-tuning steps", elem_id="steps")
                gallery = gr.Gallery(label="Detected landmarks and crop", columns=2, height=320,
                                     elem_id="source-preview")
                source_message = gr.Markdown(elem_id="source-message")
                saved = gr.Dropdown(workspace.saved_avatars(), value=None, label="Saved avatar",
                                    elem_id="saved-avatars")
                avatar_upload = gr.File(file_types=sorted(AVATAR_SUFFIXES), label="Or upload an .avatar file",
                                        elem_id="avatar-upload")
            with gr.Column():
                gr.Markdown("### 2. Motion")
                driver = gr.Video(sources=["upload"], label="Driving video", elem_id="driver")
                sample = gr.Button("Use a sample driver (a synthetic person rendered here)", elem_id="sample")
                driver_preview = gr.Image(label="Driver: first frame and landmarks", interactive=False,
                                          type="numpy", elem_id="driver-preview", height=240)
                driver_message = gr.Markdown(elem_id="driver-message")
                mode = gr.Radio(["relative", "absolute"], value="relative", elem_id="mode",
                                label="Motion: relative = the driver's motion on the portrait's own face shape; "
                                      "absolute = the driver's landmarks (the paper)")
                side = gr.Checkbox(label="Side by side (driver | landmarks | result)", elem_id="side-by-side")
                paste = gr.Checkbox(True, label="The whole picture, the head pasted back (off: the face crop)",
                                    elem_id="paste-back")
            with gr.Column():
                gr.Markdown("### 3. Result")
                run = gr.Button("Animate", variant="primary", elem_id="animate")
                result = gr.Video(label="Result", interactive=False, elem_id="result", buttons=["download"])
                status = gr.Markdown(elem_id="status")
                result_file = gr.File(label="Download the video", interactive=False, elem_id="result-file")
                avatar_name = gr.Textbox("my-avatar", label="Avatar name", elem_id="avatar-name")
                save = gr.Button("Save this avatar", elem_id="save-avatar")
                avatar_file = gr.File(label="Avatar file (download it to keep it)", interactive=False,
                                      elem_id="avatar-file")
                save_message = gr.Markdown(elem_id="save-message")

        private = {"api_visibility": "private"}
        # Everything that runs the model or the landmark detector, one at a time: they share the model (and dlib's
        # detector) and two CPU-bound jobs at once only slow each other down.
        model = {**private, "concurrency_id": "model", "concurrency_limit": 1}
        # Previews follow what the user does (upload, clear), not value changes: clearing a refused upload must
        # not also clear the reason shown for it.
        sources.upload(handlers.on_sources, sources, [sources, gallery, source_message], **model)
        sources.clear(lambda: ([], ""), None, [gallery, source_message], **private)
        driver.upload(handlers.on_driver, driver, [driver, driver_preview, driver_message], **model)
        driver.clear(lambda: (None, ""), None, [driver_preview, driver_message], **private)
        sample.click(handlers.on_sample, None, driver, **model).then(
            handlers.on_driver, driver, [driver, driver_preview, driver_message], **model)
        avatar_upload.upload(handlers.on_avatar_upload, avatar_upload, [saved, who], **private)
        run.click(on_animate, [session, who, sources, saved, personalization, steps, driver, mode, side, paste],
                  [session, result, result_file, status], **model)
        save.click(handlers.on_save, [session, avatar_name], [avatar_file, saved, save_message], **private)
    return ui
