"""`talkinghead app`: the session layer (workspace, limits, confinement, previews, personalization and animation with
progress, avatars) without a browser, then the page end to end in headless Chromium driven by Playwright.

The model is a tiny-64 export with random weights; the pictures and drivers are synthetic people (dlib finds them).
The browser test needs Debian's `chromium` at /usr/bin/chromium (`.ci/run` installs it) and skips without it; its
screenshot is saved to tests/artifacts/ (ignored by git).
"""

from __future__ import annotations

import os
import shutil
import socket
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from _app_helpers import source_picture, write_driver, write_export
from _browser import chromium
from conftest import REPO_ROOT
from talkinghead import cli
from talkinghead.app import (
    AppUnavailable,
    LimitError,
    Limits,
    OutsideWorkspaceError,
    Studio,
    Workspace,
    write_sample_driver,
)
from talkinghead.video import VideoReader

pytestmark = [
    pytest.mark.usefixtures("one_thread"),
    # Gradio 6.31's queue statistics use pandas options that pandas 3 deprecates (not ours to fix).
    pytest.mark.filterwarnings("ignore:'future.no_silent_downcasting' is deprecated"),
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated"),
]

ARTIFACTS = REPO_ROOT / "tests" / "artifacts"


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """A tiny export (fine-tunes offline with the MobileNetV2 content loss), a portrait, a picture without a face,
    a 1 s driver and a 5 s driver."""
    import cv2

    root = tmp_path_factory.mktemp("app-files")
    paths = {"export": write_export(root / "export.safetensors", ["loss.feature_network=mobilenet-offline"]),
             "portrait": root / "portrait.png", "noise": root / "noise.png",
             "driver": write_driver(root / "driver.mp4", frames=10, fps=10.0),
             "long_driver": write_driver(root / "long.mp4", frames=50, fps=10.0, size=64)}
    cv2.imwrite(str(paths["portrait"]), source_picture()[:, :, ::-1])
    cv2.imwrite(str(paths["noise"]), np.random.default_rng(0).integers(0, 256, (96, 96, 3), dtype=np.uint8))
    return paths


@pytest.fixture
def workspace(tmp_path):
    space = Workspace(Limits(upload_mb=3.0, video_seconds=2.0, sources=3, steps=5), parent=tmp_path)
    yield space
    space.close()


def _upload(workspace: Workspace, path: Path, name: str | None = None) -> Path:
    """What Gradio does with an upload: a copy in a random folder of its cache (the workspace)."""
    folder = workspace.root / f"upload-{time.perf_counter_ns()}"
    folder.mkdir()
    return Path(shutil.copy(path, folder / (name or path.name)))


# --- the session layer ---------------------------------------------------------------------------------------------


def test_only_paths_inside_the_workspace_are_used(workspace, files, tmp_path):
    inside = _upload(workspace, files["portrait"])
    assert workspace.confine(inside) == inside.resolve()
    escapes = [files["portrait"], Path("/etc/passwd"), workspace.root / ".." / "portrait.png",
               workspace.root / "runs" / ".." / ".." / files["portrait"].name]
    link = workspace.root / "link.png"
    link.symlink_to(files["portrait"])  # inside by name, outside once resolved
    for path in [*escapes, link]:
        with pytest.raises(OutsideWorkspaceError, match="reads only files uploaded to it"):
            workspace.check_upload(path, "picture")
    with pytest.raises(OutsideWorkspaceError):
        workspace.discard(tmp_path)  # never removes anything outside its runs
    with pytest.raises(OutsideWorkspaceError, match="not a run folder"):
        workspace.discard(workspace.avatars)
    assert workspace.avatars.is_dir() and files["portrait"].exists()


def test_limits_refuse_with_the_file_the_limit_and_what_to_do(workspace, files):
    big = workspace.root / "big.png"
    big.write_bytes(b"\0" * int(3.5 * 2**20))
    with pytest.raises(LimitError, match=r"big.png is 3.5 MB; uploads are limited to 3 MB .*--max-upload-mb"):
        workspace.check_upload(big, "picture")
    long = _upload(workspace, files["long_driver"])
    with pytest.raises(LimitError, match=r"long.mp4 is 5.0 s long; videos are limited to 2 s .*--max-video-seconds"):
        workspace.check_upload(long, "video")
    assert workspace.check_upload(_upload(workspace, files["driver"]), "video").name == "driver.mp4"
    notes = workspace.root / "notes.txt"
    notes.write_text("hello")
    with pytest.raises(ValueError, match=r"notes.txt: a .txt file is not a picture"):
        workspace.check_upload(notes, "picture")
    studio = Studio(workspace)
    with pytest.raises(LimitError, match="4 source files; at most 3"):
        studio.check_sources([_upload(workspace, files["portrait"]) for _ in range(4)])
    # Messages show clients their file names, never the server's folders.
    assert workspace.public(f"{workspace.root}/abc/def/me.png: no face found") == "me.png: no face found"


def test_without_a_checkpoint_only_avatars_can_be_animated(workspace, files):
    with pytest.raises(ValueError, match="started without --checkpoint.*upload an .avatar file"):
        Studio(workspace).make_avatar([_upload(workspace, files["portrait"])])


def test_fine_tuning_settings_can_be_changed_for_the_app(workspace, files):
    studio = Studio.from_checkpoint(workspace, files["export"], finetune_overrides=["finetune.lr_generator=0.001"])
    assert studio.head.config.finetune.lr_generator == 0.001
    with pytest.raises(ValueError, match="only finetune.* settings and how the warp generator is run"):
        Studio.from_checkpoint(workspace, files["export"], finetune_overrides=["model.image_size=128"])
    with pytest.raises(ValueError, match="it needs --checkpoint"):
        Studio.from_checkpoint(workspace, None, finetune_overrides=["finetune.lr_generator=0.001"])


@pytest.fixture(scope="module")
def head(files):
    from talkinghead.inference import TalkingHead

    return TalkingHead.load(files["export"])


def test_preview_shows_landmarks_and_crop_and_names_pictures_without_a_face(workspace, files, head):
    studio = Studio(workspace, head)
    items, problems = studio.preview_sources([_upload(workspace, files["portrait"]),
                                              _upload(workspace, files["noise"])])
    assert [caption for _, caption in items] == ["portrait.png: landmarks and crop",
                                                 "portrait.png: what the model sees"]
    annotated, crop = items[0][0], items[1][0]
    assert annotated.shape == (256, 256, 3) and crop.shape == (64, 64, 3)
    assert (annotated == (0, 255, 0)).all(axis=2).sum() > 68  # the landmark dots are drawn
    assert problems.startswith("noise.png: no face found") and str(workspace.root) not in problems
    image, caption = studio.preview_driver(_upload(workspace, files["driver"]))
    assert image.shape == (256, 256, 3) and caption == "driver.mp4: 10 frames at 10 fps (1.0 s); face found"


def test_fine_tune_animate_save_and_reuse_an_avatar_with_progress(workspace, files, head):
    studio = Studio(workspace, head)
    calls: list[tuple[str, int, int | None]] = []
    avatar = studio.make_avatar([_upload(workspace, files["portrait"])], steps=2,
                                progress=lambda *call: calls.append(call))
    assert avatar.info["mode"] == "fine-tuned" and avatar.info["steps"] == 2
    assert calls == [("fine-tuning", 1, 2), ("fine-tuning", 2, 2)]
    with pytest.raises(LimitError, match="6 fine-tuning steps; the app allows 0 to 5"):
        studio.make_avatar([_upload(workspace, files["portrait"])], steps=6)
    calls.clear()
    result = studio.animate(avatar, _upload(workspace, files["driver"]), side_by_side=True,
                            progress=lambda *call: calls.append(call))
    assert result.path.parent.parent == workspace.runs and result.frames == 10 and result.fps == pytest.approx(10)
    assert calls[-1] == ("rendering", 10, 10) and len(calls) == 10
    assert VideoReader(result.path).size == (256 * 3, 256)  # driver | landmarks | the whole 256 px picture (default)
    # Save under a sanitized name, pick it by name, animate it again; an export is not an avatar.
    path = workspace.save_avatar(avatar, "../../Mona Lisa!")
    assert path == workspace.avatars / "Mona-Lisa.avatar" and workspace.saved_avatars() == ["Mona-Lisa"]
    again = studio.animate(studio.load_avatar("Mona-Lisa"), _upload(workspace, files["driver"]))
    assert again.frames == 10 and again.path.parent != result.path.parent
    crop = studio.animate(avatar, _upload(workspace, files["driver"]), paste_back=False)  # the box unticked
    assert VideoReader(crop.path).size == (256, 256)  # the face crop at animate's default --size
    assert workspace.import_avatar(_upload(workspace, path)) == "Mona-Lisa"
    with pytest.raises(ValueError, match="'export' checkpoint, expected 'avatar'"):
        workspace.import_avatar(_upload(workspace, files["export"], "model.avatar"))
    with pytest.raises(ValueError, match="no saved avatar named '../x'"):
        studio.load_avatar("../x")
    workspace.discard(result.path.parent)
    assert not result.path.exists()
    root = workspace.root
    workspace.close()
    assert not root.exists()


def test_the_sample_driver_is_a_synthetic_person_the_tracker_follows(tmp_path):
    from talkinghead.landmarks import default_landmarks, driver_tracker

    path = write_sample_driver(tmp_path / "sample.mp4")
    reader = VideoReader(path)
    assert (reader.num_frames, reader.fps, reader.size) == (75, 25.0, (256, 256))
    track = driver_tracker(default_landmarks())
    assert all(track(frame) is not None for frame in reader)


def test_a_missing_gradio_names_the_extra_to_install(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "gradio", None)  # what `import gradio` sees when it is not installed
    from talkinghead.app import AppServer

    with pytest.raises(AppUnavailable, match=r'pip install -e "\.\[app\]"'):
        AppServer().start()
    assert cli.main(["app", "--port", "0"]) == 2
    assert 'pip install -e ".[app]"' in capsys.readouterr().err


def test_the_app_command_serves_on_loopback_and_cleans_up_on_ctrl_c():
    pytest.importorskip("gradio")
    import signal
    import subprocess
    import urllib.request

    port = _free_port()
    # A runner started in the background (`nohup ... &`) ignores SIGINT, and so would the app it starts: give the
    # app the default handler, as in a terminal, so that Ctrl-C is what it receives.
    process = subprocess.Popen([sys.executable, "-m", "talkinghead", "app", "--port", str(port)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        line = ""
        while "talkinghead app on" not in line and process.poll() is None:
            line = process.stdout.readline()
        assert line.startswith(f"talkinghead app on http://127.0.0.1:{port}/"), line
        workspace = Path(line.split("removes ", 1)[1].rstrip(")\n"))
        assert workspace.is_dir() and workspace.name.startswith("talkinghead-app-")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as response:
            assert response.status == 200
        process.send_signal(signal.SIGINT)
        # Gradio's close joins its server threads: ~10 s on a quiet machine, past 30 s beside a training run
        output = process.communicate(timeout=120)[0]
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, output
    assert not workspace.exists()


# --- the page in a real browser ------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    with chromium(tmp_path_factory.mktemp("chromium-profile"), width=1400, height=1000, needs=("gradio",)) as context:
        yield context


@pytest.mark.slow
def test_the_page_animates_an_upload_and_refuses_an_oversized_one(files, browser, tmp_path):
    """Upload a portrait and a driver, see the previews, fine-tune and animate the tiny model, play the result, save
    the avatar and animate it again; then an upload over the size limit and a driver over the length limit are
    refused with a message, and the sample driver takes the refused one's place. ~25 s on one core."""
    import httpx

    from talkinghead.app import AppServer

    big = tmp_path / "big.png"
    big.write_bytes(os.urandom(int(1.5 * 2**20)))
    server = AppServer(files["export"], port=_free_port(), limits=Limits(upload_mb=1.0, video_seconds=4.0))
    url = server.start()
    root = server.workspace.root
    try:
        assert url.startswith("http://127.0.0.1:")
        # The server hands out no file outside its workspace.
        assert httpx.get(f"{url}gradio_api/file={files['portrait']}").status_code in (403, 404)
        page = browser.new_page()
        page.goto(url)
        page.set_input_files("#sources input[type=file]", str(files["portrait"]))
        page.wait_for_selector("#source-preview img", timeout=30_000)
        page.set_input_files("#driver input[type=file]", str(files["driver"]))
        page.wait_for_selector("#driver-preview img", timeout=30_000)
        page.get_by_text("face found").wait_for(timeout=30_000)
        page.check("#side-by-side input[type=checkbox]")
        page.get_by_role("radio", name="fine-tuned").check()
        page.fill("#steps input[type=number]", "2")
        page.press("#steps input[type=number]", "Tab")
        page.click("#animate")
        page.get_by_text("Done in").wait_for(timeout=60_000)
        assert "fine-tuned avatar from 1 picture(s), 2 steps" in page.inner_text("#status")
        video = page.wait_for_selector("#result video", timeout=30_000)
        playable = page.evaluate("""async (video) => {
            if (video.readyState < 2) await new Promise(r => video.addEventListener('loadeddata', r, {once: true}));
            video.muted = true; await video.play();
            await new Promise(r => setTimeout(r, 300));
            return {duration: video.duration, time: video.currentTime, width: video.videoWidth,
                    height: video.videoHeight, error: video.error && video.error.code};
        }""", video)
        assert playable["error"] is None and playable["duration"] == pytest.approx(1.0, abs=0.15), playable
        # driver | landmarks | the whole 256 px picture (the paste-back box is ticked by default)
        assert playable["time"] > 0 and (playable["width"], playable["height"]) == (768, 256), playable
        assert "10 frames at 10 fps" in page.inner_text("#status")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "app.png"), full_page=True)
        print(f"screenshot: {ARTIFACTS / 'app.png'}")
        # Save the avatar, then animate it again as a saved avatar.
        page.fill("#avatar-name textarea, #avatar-name input", "tiny person")
        page.click("#save-avatar")
        page.locator("#save-message").get_by_text("Saved avatar tiny-person").wait_for(timeout=30_000)
        page.get_by_role("radio", name="saved avatar").check()
        page.click("#animate")
        page.locator("#status").get_by_text("saved avatar 'tiny-person'").wait_for(timeout=60_000)
        # Over the limits, on a fresh page: a 1.5 MB picture (Gradio refuses it before it is stored) and a 5 s
        # driver (the app does); then the sample driver takes the refused one's place.
        page = browser.new_page()
        page.goto(url)
        page.set_input_files("#sources input[type=file]", str(big))
        page.get_by_text("exceed the maximum allowed size").wait_for(timeout=30_000)
        page.set_input_files("#driver input[type=file]", str(files["long_driver"]))
        refused = page.locator("#driver-message")
        refused.get_by_text("Refused: long.mp4 is 5.0 s long; videos are limited to 4 s").wait_for(timeout=30_000)
        assert page.locator("#driver video").count() == 0  # the refused driver is cleared, ready for another
        page.wait_for_timeout(500)  # let the cleared components settle for the picture
        page.screenshot(path=str(ARTIFACTS / "app-limits.png"), full_page=True)
        assert not any(root.rglob("big.png"))
        page.click("#sample")
        page.locator("#driver-message").get_by_text("synthetic-driver.mp4: 75 frames at 25 fps (3.0 s); face found") \
            .wait_for(timeout=30_000)
    except Exception:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "app-failure.png"), full_page=True)
        print(f"the page when the test failed: {ARTIFACTS / 'app-failure.png'}")
        raise
    finally:
        server.close()
    assert not root.exists()  # uploads and results went with the workspace
