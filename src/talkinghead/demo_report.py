"""The demo's ``report.md``: what was run, the paper's orderings checked, pictures, one-sentence readings."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from talkinghead.evaluate.models import FINE_TUNED, FINE_TUNED_INIT


def metric_mean(report: dict | None, method: str, shots: int, metric: str) -> float | None:
    """The mean of ``metric`` for ``method`` at T = ``shots`` in a `metrics.report.build_report` dict."""
    for row in (report or {}).get("rows", []):
        if row["method"] == method and int(row["shots"]) == shots:
            value = row["metrics"].get(metric, {}).get("mean")
            return None if value is None or not math.isfinite(value) else float(value)
    return None


def quality_checks(report: dict | None, large: int = 8, small: int = 1) -> list[dict[str, Any]]:
    """The paper's orderings on unseen identities (issue: the demo's quality bar).

    FT at T=large beats copy-source on SSIM (higher) and L1 (lower); FT beats its feed-forward start (FT-init:
    the same FT checkpoint, ψ̂ = P ê) at T=large on SSIM; T=large beats T=small for FT on SSIM. Each check is
    {"name", "passed" (None when a value is missing), "detail"}.
    """
    def check(name: str, a: float | None, b: float | None, higher_is_better: bool, label: str) -> dict:
        if a is None or b is None:
            return {"name": name, "passed": None, "detail": f"{label}: value missing"}
        passed = a > b if higher_is_better else a < b
        return {"name": name, "passed": bool(passed), "detail": f"{label}: {a:.4f} vs {b:.4f}"}

    def mean(method: str, shots: int, metric: str) -> float | None:
        return metric_mean(report, method, shots, metric)

    return [
        check(f"fine-tuned T={large} beats copy-source on SSIM", mean(FINE_TUNED, large, "ssim"),
              mean("copy-source", large, "ssim"), True, "SSIM"),
        check(f"fine-tuned T={large} beats copy-source on L1", mean(FINE_TUNED, large, "l1"),
              mean("copy-source", large, "l1"), False, "L1"),
        check(f"fine-tuned beats its feed-forward start (FT-init) at T={large} (SSIM)",
              mean(FINE_TUNED, large, "ssim"), mean(FINE_TUNED_INIT, large, "ssim"), True, "SSIM"),
        check(f"T={large} beats T={small} (fine-tuned, SSIM)", mean(FINE_TUNED, large, "ssim"),
              mean(FINE_TUNED, small, "ssim"), True, "SSIM"),
    ]


def training_curves(metrics_jsonl: Path, size: tuple[int, int] = (720, 360)) -> np.ndarray:
    """Loss curves from the run's JSON-lines log, drawn with OpenCV (uint8 RGB), one panel per term."""
    rows = [json.loads(line) for line in metrics_jsonl.read_text().splitlines() if line.strip()]
    keys = [k for k in ("loss/generator", "loss/discriminator", "loss/mobilenet", "loss/vgg19",
                        "loss/feature_matching", "loss/match") if any(k in r for r in rows)]
    width, height = size
    panel_h = height
    canvas = np.full((panel_h * max(1, math.ceil(len(keys) / 2)), width * 2 if len(keys) > 1 else width, 3), 255,
                     np.uint8)
    for i, key in enumerate(keys):
        points = [(r["step"], r[key]) for r in rows if key in r and math.isfinite(r[key])]
        x0, y0 = (i % 2) * width, (i // 2) * panel_h
        _line_plot(canvas[y0:y0 + panel_h, x0:x0 + width], points, key)
    return canvas


def _line_plot(panel: np.ndarray, points: list[tuple[float, float]], title: str) -> None:
    height, width = panel.shape[:2]
    left, right, top, bottom = 60, 20, 30, 30
    cv2.putText(panel, title, (left, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.rectangle(panel, (left, top), (width - right, height - bottom), (160, 160, 160), 1)
    if len(points) < 2:
        return
    xs, ys = np.array([p[0] for p in points], float), np.array([p[1] for p in points], float)
    low, high = float(ys.min()), float(ys.max())
    high = high if high > low else low + 1.0
    px = left + (xs - xs.min()) / max(xs.max() - xs.min(), 1e-9) * (width - left - right)
    py = height - bottom - (ys - low) / (high - low) * (height - top - bottom)
    cv2.polylines(panel, [np.stack([px, py], 1).astype(np.int32)], False, (30, 90, 200), 1, cv2.LINE_AA)
    for value, y in ((high, top), (low, height - bottom)):
        cv2.putText(panel, f"{value:.3g}", (2, int(y) + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(panel, f"step {int(xs.max())}", (width - right - 80, height - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                (0, 0, 0), 1, cv2.LINE_AA)


def animation_sheet(video: Path, count: int = 6) -> np.ndarray | None:
    """``count`` evenly spaced frames of the animation, stacked vertically (uint8 RGB)."""
    from talkinghead.video import VideoReader

    frames = list(VideoReader(video))
    if not frames:
        return None
    picks = np.linspace(0, len(frames) - 1, min(count, len(frames))).round().astype(int)
    return np.concatenate([frames[i] for i in picks], axis=0)


def _save_png(path: Path, image: np.ndarray) -> None:
    temp = path.with_name(path.stem + ".tmp.png")
    cv2.imwrite(str(temp), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    temp.replace(path)


def _warm_start_line(warm: dict | None, preset: str) -> str:
    if not warm:
        if preset.startswith("warp"):
            return ("- no warm start: the warp-guided generator begins exactly at the mesh warp of the nearest "
                    "source and learns corrections")
        return "- started from random weights (`--from-scratch`)"
    return (f"- started from the packaged warm start: the same networks meta-learned for {warm.get('step')} steps "
            f"({warm.get('images')} images) on {warm.get('identities')} other synthetic people, none of them in "
            f"the test set (SHA-256 {str(warm.get('sha256'))[:12]})")


def write_demo_report(out: Path, state: dict[str, Any]) -> Path:
    """Write ``out/report.md`` (and its pictures) from the demo's recorded stage results."""
    done = state.get("done", {})
    evaluation = done.get("evaluate") or {}
    self_report = evaluation.get("self_reenactment")
    lines = ["# talkinghead demo", "",
             "Everything here was made by `talkinghead demo` on this machine: no data or weights were "
             "downloaded. Apart from the packaged Mona Lisa (a public-domain painting) the people are synthetic; "
             "the videos carry a visible *synthetic* mark.", ""]
    mona = done.get("mona_lisa") or {}
    if mona.get("output") and Path(mona["output"]).exists():
        from talkinghead.showcase import contact_sheet

        _save_png(out / "mona_lisa_sheet.png", contact_sheet(Path(mona["output"]), mona.get("driver")))
        lines += ["## First: the shipped real-face model on the Mona Lisa", "",
                  f"`mona_lisa.mp4`: the packaged public-domain Mona Lisa animated by the shipped model "
                  f"({mona.get('model')}, meta-learned on real faces; see docs/model-card.md), {mona.get('mode')}, "
                  f"from one picture, driven by a synthetic talking head: the whole painting, the head talking, "
                  f"{mona.get('frames')} frames ({state.get('seconds', {}).get('mona_lisa', '?')} s).", "",
                  "![the Mona Lisa, driven](mona_lisa_sheet.png)", "",
                  "Reading: top row the synthetic driver, bottom row the painting following its head turns, mouth "
                  "and eyes. The rest of this report is the demo's own model, meta-learned here on synthetic heads.",
                  ""]
    settings = state.get("settings", {})
    preset = settings.get("preset", "tiny-64")  # demo folders from before presets were all tiny-64
    seconds = state.get("seconds", {})
    lines += ["## What ran", "",
              f"- data: {done.get('data', {}).get('train_videos')} training identities and "
              f"{done.get('data', {}).get('test_videos')} unseen test identities at "
              f"{done.get('data', {}).get('image_size')} px ({seconds.get('data', '?')} s)",
              f"- meta-learning: {preset}, FT variant (with L_MCH), offline MobileNetV2 perceptual loss, "
              f"{done.get('train', {}).get('steps')} steps, {done.get('train', {}).get('images')} images "
              f"({seconds.get('train', '?')} s; {state.get('seconds_per_step', '?')} s per step measured)",
              _warm_start_line(settings.get("warm_start"), preset),
              f"- evaluation: {seconds.get('evaluate', '?')} s; animation: {seconds.get('animate', '?')} s",
              f"- scale `{settings.get('scale', {}).get('name')}`, budget {settings.get('minutes')} minutes", ""]

    checks = quality_checks(self_report, large=max(settings.get("scale", {}).get("shots", [8])),
                            small=min(settings.get("scale", {}).get("shots", [1])))
    lines += ["## The paper's orderings on unseen identities", ""]
    for item in checks:
        mark = {True: "PASS", False: "FAIL", None: "n/a"}[item["passed"]]
        lines.append(f"- **{mark}** {item['name']} ({item['detail']})")
    lines += ["", "Reading: a PASS row means the model, personalized from T frames of a person it never saw, "
              "reproduces held-out frames of that person better than the baseline named.", ""]

    table = out / "evaluation" / "table.md"
    if table.exists():
        lines += ["## Self-reenactment (Table 1 layout)", "", table.read_text().strip(), "",
                  "Reading: each row is a method at T source frames; ⚠ marks a model row that does not beat both "
                  "baselines on a primary metric.", ""]
    large_yaw = evaluation.get("large_yaw")
    if large_yaw:
        ours = metric_mean(large_yaw, FINE_TUNED, 8, "ssim")
        warp = metric_mean(large_yaw, "mesh-warp", 8, "ssim")
        lines += ["## Large head rotation (yaw > 20° from every source frame)", "",
                  f"Fine-tuned T=8 SSIM {ours if ours is None else f'{ours:.4f}'} vs mesh warp "
                  f"{warp if warp is None else f'{warp:.4f}'}.", "",
                  "Reading: this is where warping a source frame breaks down (disocclusion), the paper's case "
                  "for a generator.", ""]
    cross = evaluation.get("cross_identity") or {}
    for mode, report in cross.items():
        if report:
            ssim = metric_mean(report, FINE_TUNED, 8, "ssim")
            lines += [f"- cross-identity ({mode}): fine-tuned T=8 SSIM against the rendered 'A with B's "
                      f"motion' frame: {ssim if ssim is None else f'{ssim:.4f}'}"]
    if cross:
        lines += ["", "Reading: the synthetic renderer knows what person A looks like with B's motion, so "
                  "cross-identity driving has a ground truth here.", ""]

    metrics_log = out / "run" / "metrics.jsonl"
    if metrics_log.exists():
        _save_png(out / "training_curves.png", training_curves(metrics_log))
        lines += ["## Training curves", "", "![training curves](training_curves.png)", "",
                  "Reading: the generator's total and content losses should fall while the discriminator's hinge "
                  "loss stays away from zero (neither network wins outright).", ""]
    sheets = sorted((out / "evaluation" / "sheets").glob("*_T8.png"))[:2]
    if sheets:
        lines += ["## Contact sheets (source | ground truth | each method)", ""]
        lines += [f"![{p.stem}]({p.relative_to(out).as_posix()})" for p in sheets]
        lines += ["", "Reading: the columns put the model's frames beside the ground truth and both baselines.", ""]
    animation = done.get("animate") or {}
    if animation.get("output") and Path(animation["output"]).exists():
        sheet = animation_sheet(Path(animation["output"]))
        if sheet is not None:
            _save_png(out / "animation_sheet.png", sheet)
        lines += ["## Animation", "",
                  f"`animation.mp4`: unseen identity `{animation.get('avatar')}` driven by `{animation.get('driver')}`"
                  " (relative retargeting): driver | landmark image | result.", "",
                  "![animation frames](animation_sheet.png)", "",
                  "Reading: the avatar should keep its own face and colours while following the driver's head "
                  "turns, mouth and blinks.", ""]
    path = out / "report.md"
    temp = path.with_suffix(".tmp")
    temp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    temp.replace(path)
    (out / "quality.json").write_text(json.dumps(checks, indent=2))
    return path
