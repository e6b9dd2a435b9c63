"""How much the warp generator's learned parts act (issue 24 item 10): `evaluate.learned_parts` on a synthetic dataset
with freshly initialized warp-tiny exports whose heads are set by hand, so every figure has a known value.

Untrained, the warp generator is exactly the mesh warp of the nearest source (zero flow, gate 1, mask 1), so the
figures must say "nothing learned acts"; a constant flow-head bias gives a known flow in pixels; an open mask gives
a known synthesis share and lets ψ matter.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from talkinghead.checkpoint import save_checkpoint
from talkinghead.config import preset
from talkinghead.data.index import load_index
from talkinghead.data.prepare import write_synthetic_dataset
from talkinghead.evaluate.frames import load_frames
from talkinghead.evaluate.learned_parts import (
    FIGURES,
    NoWarpParts,
    flow_pixels,
    main,
    measure_learned_parts,
    render_parts,
)
from talkinghead.evaluate.methods import source_objects
from talkinghead.inference import TalkingHead
from talkinghead.pixels import to_uint8
from test_evaluate import fresh_tensors

pytestmark = pytest.mark.usefixtures("one_thread")

SHOTS, TARGETS = 2, 3
UNSEEN = {"dataset": {"identities": ["someone-else"], "content_hash": "x"}}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("learned_parts")
    write_synthetic_dataset(root / "data", num_identities=3, videos_per_identity=1, frames_per_video=8, size=64,
                            seed=3)
    return {"root": root, "data": root / "data"}


def warp_export(path, flow_bias=(0.0, 0.0), mask_bias: float = 0.0):
    """A freshly initialized warp-tiny export, with the flow head's bias (ΔF in grid units, x then y) and the mask
    head's bias (m: mask = 1 - m) set: both heads start at zero, so these are the whole head outputs."""
    config = preset("warp-tiny")
    tensors = fresh_tensors(config, seed=2)
    assert not tensors["generator.flow_head.weight"].any() and not tensors["generator.synthesis.mask_head.weight"].any()
    tensors["generator.flow_head.bias"] = torch.tensor(flow_bias, dtype=torch.float32)
    tensors["generator.synthesis.mask_head.bias"] = torch.tensor([mask_bias], dtype=torch.float32)
    return save_checkpoint(path, tensors, config, kind="export", metadata=UNSEEN)


def measure(world, path):
    return measure_learned_parts(path, world["data"], shots=SHOTS, targets=TARGETS)


def test_flow_pixels_convert_grid_units_at_the_images_size():
    """align_corners=False: one grid unit is W/2 pixels in x and H/2 in y (H != W here, so a swap would show)."""
    flow = torch.zeros(1, 4, 8, 2)  # H = 4, W = 8
    flow[..., 0] = 2 / 8  # one pixel in x
    assert torch.allclose(flow_pixels(flow), torch.ones(1, 4, 8))
    flow[..., 0], flow[..., 1] = 3 * 2 / 8, 4 * 2 / 4  # 3 px in x, 4 px in y
    assert torch.allclose(flow_pixels(flow), torch.full((1, 4, 8), 5.0))


def test_the_untrained_warp_model_is_the_mesh_warp_and_nothing_learned_acts(world):
    result = measure(world, warp_export(world["root"] / "fresh.safetensors"))
    assert result["settings"]["videos"] == 3 and result["settings"]["image_size"] == 64
    assert len(result["videos"]) == 3
    for key, video in result["videos"].items():
        assert video["other_psi_from"] not in (None, key)
        assert video["residual_flow_mean_px"] == 0.0 and video["residual_flow_max_px"] == 0.0
        assert video["residual_flow_weighted_px"] == 0.0
        assert video["synthesis_share"] == 0.0 and video["gate_mean"] == 1.0
        assert video["output_vs_mixed_warp_grey"] == 0.0
        assert video["psi_swap_grey"] == 0.0  # mask = 1: the synthesis branch, and with it ψ, supplies nothing
        assert video["output_vs_mesh_warp_grey"] < 0.05, video  # 0 measured; cv2.remap may round apart
        assert video["max_difference_from_avatar_grey"] == 0
        assert video["psi_swap_mouth_grey"] == 0.0
        assert video["psi_swap_synthesis_grey"] is None  # nothing is synthesized
    overall = result["overall"]
    assert set(overall) == {*FIGURES, "auc_projection", "embedding"}  # the export carries D, not a lip D
    embedding = overall["embedding"]
    assert embedding["videos"] == 3 and embedding["chance"] == pytest.approx(1 / 3)
    assert 0.0 <= embedding["identification"] <= 1.0 and embedding["relative_spread"] > 0
    auc = overall["auc_projection"]
    assert 0.0 <= auc["auc"] <= 1.0 and auc["frames"] == len(result["videos"]) * TARGETS
    assert overall["gate_mean"] == {"mean": 1.0, "min": 1.0, "max": 1.0, "videos": 3}


def test_a_flow_head_bias_gives_its_flow_in_pixels_and_moves_the_output_off_the_mesh_warp(world):
    fresh = measure(world, warp_export(world["root"] / "fresh.safetensors"))
    moved = measure(world, warp_export(world["root"] / "flow.safetensors", flow_bias=(0.01, 0.02)))
    expected = float(np.hypot(0.01 * 64 / 2, 0.02 * 64 / 2))  # 0.32 px in x, 0.64 px in y at 64 px
    for key, video in moved["videos"].items():
        assert video["residual_flow_mean_px"] == pytest.approx(expected, rel=1e-5)
        assert video["residual_flow_max_px"] == pytest.approx(expected, rel=1e-5)
        assert video["residual_flow_weighted_px"] == pytest.approx(expected, rel=1e-5)  # weights sum to 1
        assert video["output_vs_mesh_warp_grey"] > fresh["videos"][key]["output_vs_mesh_warp_grey"] + 0.1
        assert video["psi_swap_grey"] == 0.0 and video["synthesis_share"] == 0.0  # the mask is still shut
        assert video["max_difference_from_avatar_grey"] == 0
    assert moved["overall"]["residual_flow_mean_px"]["mean"] == pytest.approx(expected, rel=1e-5)


def test_an_open_mask_gives_its_synthesis_share_and_lets_another_persons_psi_change_the_output(world):
    result = measure(world, warp_export(world["root"] / "mask.safetensors", mask_bias=0.25))
    for video in result["videos"].values():
        assert video["synthesis_share"] == pytest.approx(0.25, abs=1e-6)  # mask = 1 - 0.25 everywhere
        assert video["output_vs_mixed_warp_grey"] > 1.0
        assert video["psi_swap_grey"] > 0.01, video
        # one synthesis share everywhere: the share-weighted swap is the plain one
        assert video["psi_swap_synthesis_grey"] == pytest.approx(video["psi_swap_grey"], rel=1e-4)
        assert video["max_difference_from_avatar_grey"] == 0
    values = [v["psi_swap_grey"] for v in result["videos"].values()]
    assert result["overall"]["psi_swap_grey"]["mean"] == pytest.approx(float(np.mean(values)))
    assert result["overall"]["psi_swap_grey"]["min"] == min(values)


def test_render_parts_output_is_the_avatars_frame(world, tmp_path):
    """The parts are measured on exactly what the avatar renders (its traced runtime), with flow and mask active."""
    path = warp_export(tmp_path / "both.safetensors", flow_bias=(0.02, -0.01), mask_bias=0.3)
    head = TalkingHead.load(path, device="cpu", landmarks=lambda image, previous: None)
    index = load_index(world["data"])
    images, landmarks = load_frames(index, 0, list(range(8)), 64)
    avatar = head.personalize(source_objects(images[:3], landmarks[:3], "v", [0, 1, 2]), check_identity=False)
    parts = render_parts(avatar, landmarks[3:])
    assert np.array_equal(to_uint8(parts["output"]), avatar.render_batch(landmarks[3:]))
    assert parts["residual_flow"].shape == (5, 2, 64, 64, 2)  # N = 2 nearest of the 3 sources
    other = render_parts(avatar, landmarks[3:], psi=torch.zeros_like(avatar.psi))
    assert not torch.equal(other["output"], parts["output"]) and torch.equal(other["mixed_warp"], parts["mixed_warp"])


def test_a_paper_family_checkpoint_is_refused(world, tmp_path):
    config = preset("tiny-64")
    path = save_checkpoint(tmp_path / "paper.safetensors", fresh_tensors(config, seed=0), config, kind="export",
                           metadata=UNSEEN)
    with pytest.raises(NoWarpParts, match="has no residual flow"):
        measure(world, path)


def test_the_command_writes_json_and_prints_the_table(world, tmp_path, capsys):
    path = warp_export(tmp_path / "fresh.safetensors")
    out = tmp_path / "parts" / "result.json"
    main(["--checkpoint", str(path), "--data", str(world["data"]), "--out", str(out), "--shots", str(SHOTS),
          "--targets", str(TARGETS)])
    written = json.loads(out.read_text())
    assert written["overall"]["synthesis_share"]["mean"] == 0.0 and written["settings"]["shots"] == SHOTS
    assert not list(out.parent.glob("*.tmp"))
    printed = capsys.readouterr().out
    assert "residual_flow_mean_px" in printed and "3 videos" in printed


def test_the_embedding_figures_on_an_embedder_that_sees_only_colour():
    """ê = the frames' mean colour: people of distinct colours are identified from other frames of theirs, and the
    spread is the distance between their colours over the mean norm, as written."""
    from types import SimpleNamespace

    from talkinghead.evaluate.learned_parts import embedding_identity

    colours = {"a": (200, 20, 20), "b": (20, 200, 20), "c": (20, 20, 200)}

    def frames(colour, count):
        return np.broadcast_to(np.array(colour, np.uint8), (count, 8, 8, 3)).copy()

    def tensors(sources):
        return torch.from_numpy(np.stack([s.crop for s in sources])).permute(0, 3, 1, 2).float() / 255, None

    generator = SimpleNamespace(project=lambda e: e * 2, _identity_coefficients=lambda: torch.zeros(3),
                                parameters=lambda: iter([torch.zeros(1)]))
    head = SimpleNamespace(_tensors=tensors, embedder=lambda x, _: x.mean(dim=(2, 3)), generator=generator)
    points = np.zeros((2, 68, 2), np.float32)
    inputs = {f"{p}/v": (frames(c, 2), points, points, frames(tuple(v + 5 for v in c), 2))
              for p, c in colours.items()}
    splits = {f"{p}/v": SimpleNamespace(identity=p) for p in colours}
    figures = embedding_identity(head, inputs, splits)
    assert figures["identification"] == 1.0 and figures["chance"] == pytest.approx(1 / 3)
    vectors = torch.tensor(list(colours.values()), dtype=torch.float32) / 255
    pair = float((vectors[0] - vectors[1]).norm())  # every pair is equally far apart
    assert figures["relative_spread"] == pytest.approx(pair / float(vectors.norm(dim=1).mean()), rel=1e-5)
    assert figures["psi_relative_spread"] == pytest.approx(figures["relative_spread"], rel=1e-5)  # ψ = 2ê, scale-free
