"""The paper's networks: sizes, shapes, normalization kinds, spectral norm, P/ψ̂, Eq. 5 and W's sparse gradient."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from talkinghead.config import preset
from talkinghead.models import Discriminator, Embedder, Generator
from talkinghead.models.layers import AdaptiveInstanceNorm, InstanceNorm, SNConv2d, SNLinear

PRESETS = ["paper-256", "small-128", "cpu-128", "tiny-64"]


def count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.fixture(scope="module", params=PRESETS)
def networks(request):
    """(cfg, E, G, D) per preset, built once per module (paper-256 takes ~1 s)."""
    torch.manual_seed(0)
    cfg = preset(request.param).model
    return cfg, Embedder(cfg).eval(), Generator(cfg).eval(), Discriminator(cfg, num_videos=7).eval()


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    cfg = preset("tiny-64").model
    return cfg, Embedder(cfg), Generator(cfg), Discriminator(cfg, num_videos=5)


def discriminator_convolutional(discriminator: Discriminator) -> int:
    return count(discriminator.blocks) + count(discriminator.attention)


def test_paper_parameter_counts_within_five_percent():
    cfg = preset("paper-256").model
    embedder, generator, discriminator = Embedder(cfg), Generator(cfg), Discriminator(cfg, num_videos=3)
    assert abs(count(embedder) - 15e6) / 15e6 <= 0.05, count(embedder)
    assert abs(count(generator) - 38e6) / 38e6 <= 0.05, count(generator)  # P included
    assert abs(discriminator_convolutional(discriminator) - 20e6) / 20e6 <= 0.05
    # The head is W (3 x 512), w0 (512) and b: everything else is the convolutional part V.
    assert count(discriminator) - discriminator_convolutional(discriminator) == 3 * 512 + 512 + 1
    assert count(generator.projection) == 512 * generator.num_adain_params + generator.num_adain_params


def test_smaller_presets_keep_the_structure_with_fewer_parameters():
    sizes = {}
    for name in PRESETS:
        cfg = preset(name).model
        embedder, generator = Embedder(cfg), Generator(cfg)
        sizes[name] = (count(embedder), count(generator))
        assert len(embedder.blocks) == (cfg.image_size // 4).bit_length() - 1  # down to 4x4
        assert len(generator.down) == len(generator.up) == cfg.generator_down_blocks
        assert len(generator.down_attention) == len(generator.up_attention) == len(embedder.attention) == 1
    assert sizes["paper-256"] > sizes["small-128"] > sizes["cpu-128"] > sizes["tiny-64"]
    assert sizes["tiny-64"][0] < 500_000 and sizes["tiny-64"][1] < 500_000  # CPU-sized


@pytest.mark.parametrize("batch", [1, 3])
def test_output_shapes_and_ranges(networks, batch):
    cfg, embedder, generator, discriminator = networks
    size, n = cfg.image_size, cfg.embedding_dim
    generator_ = torch.Generator().manual_seed(batch)
    frames = torch.rand(batch, 3, size, size, generator=generator_) * 2 - 1
    landmark_images = torch.rand(batch, 3, size, size, generator=generator_) * 2 - 1
    with torch.inference_mode():
        embedding = embedder(frames, landmark_images)
        psi = generator.project(embedding)
        images = generator(landmark_images, psi)
        score, features = discriminator(images, landmark_images, torch.arange(batch) % 7)
    assert embedding.shape == (batch, n) and bool((embedding >= 0).all())  # ReLU after sum pooling
    assert psi.shape == (batch, generator.num_adain_params)
    assert images.shape == (batch, 3, size, size)
    assert float(images.abs().max()) <= 1.0 and float(images.std()) > 0
    assert score.shape == (batch,)
    assert len(features) == len(discriminator.blocks)  # after every residual block, the 4x4 one included
    assert features[0].shape == (batch, cfg.min_channels, size // 2, size // 2)
    assert features[-1].shape == features[-2].shape == (batch, n, 4, 4)


def test_instance_norm_in_encoder_adain_after_it_none_in_embedder_and_discriminator(tiny):
    _, embedder, generator, discriminator = tiny
    norms = (InstanceNorm, AdaptiveInstanceNorm)
    for module in (embedder, discriminator):
        assert not any(isinstance(m, norms) for m in module.modules())
    down = list(generator.down.modules()) + list(generator.down_attention.modules())
    assert sum(isinstance(m, InstanceNorm) for m in down) == 2 * len(generator.down) - 1  # first block: no pre-norm
    assert not any(isinstance(m, AdaptiveInstanceNorm) for m in down)
    decoder = list(generator.bottleneck.modules()) + list(generator.up.modules()) + [generator.output_norm]
    assert not any(isinstance(m, InstanceNorm) for m in decoder)
    assert sum(isinstance(m, AdaptiveInstanceNorm) for m in decoder) == 2 * (len(generator.bottleneck)
                                                                          + len(generator.up)) + 1
    assert sum(isinstance(m, InstanceNorm) for m in generator.modules()) == 2 * len(generator.down) - 1


@pytest.mark.parametrize("name", ["paper-256", "tiny-64"])
def test_every_convolution_and_linear_is_spectrally_normalized(name):
    cfg = preset(name).model
    with torch.device("meta"):
        nets = [Embedder(cfg), Generator(cfg), Discriminator(cfg, num_videos=2)]
    for net in nets:
        layers = [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear, nn.ConvTranspose2d))]
        assert layers, type(net).__name__
        plain = [type(m).__name__ for m in layers if not isinstance(m, (SNConv2d, SNLinear))]
        assert plain == [], f"{type(net).__name__} has layers without spectral norm: {plain}"
        embeddings = [m for m in net.modules() if isinstance(m, nn.Embedding)]
        assert embeddings == ([net.video_embeddings] if isinstance(net, Discriminator) else [])


def test_spectral_norm_gives_unit_largest_singular_value_and_caches_only_without_grad():
    torch.manual_seed(0)
    layer = SNConv2d(8, 16, 3)
    with torch.no_grad():
        layer.weight.mul_(7.0)
    layer.train()
    x = torch.randn(2, 8, 6, 6)
    for _ in range(30):  # power iterations converge during training forwards
        layer(x)
    sigma = torch.linalg.matrix_norm(layer.normalized_weight().detach().reshape(16, -1), ord=2)
    assert float(sigma) == pytest.approx(1.0, abs=1e-3)
    layer.eval()
    with torch.no_grad():
        first = layer(x)
        assert layer.normalized_weight() is layer.normalized_weight()  # computed once in eval
        layer.weight.add_(torch.randn_like(layer.weight))  # the cache follows in-place weight changes
        assert not torch.equal(layer(x), first)
    assert layer.normalized_weight().requires_grad  # with grad enabled: fresh, differentiable
    linear = SNLinear(5, 4)
    assert torch.linalg.matrix_norm(linear.normalized_weight().detach(), ord=2) == pytest.approx(1.0, abs=1e-3)


def test_projection_size_matches_adain_coefficients_and_psi_drives_output(tiny):
    cfg, _, generator, _ = tiny
    generator = generator.eval()
    adain = [m for m in generator.modules() if isinstance(m, AdaptiveInstanceNorm)]
    assert generator.projection.out_features == generator.num_adain_params == sum(2 * m.channels for m in adain)
    torch.manual_seed(1)
    landmark_images = torch.rand(2, 3, cfg.image_size, cfg.image_size) * 2 - 1
    embedding = torch.rand(2, cfg.embedding_dim) * 3
    with torch.no_grad():
        psi = generator.project(embedding)
        before = generator(landmark_images, psi)
        changed = generator(landmark_images, psi + 0.5 * torch.randn_like(psi))
        assert (changed - before).abs().max() > 1e-3  # ψ̂ drives the output
        generator.projection.weight.add_(torch.randn_like(generator.projection.weight))  # change P afterwards
        generator.projection.bias.add_(1.0)
        again = generator(landmark_images, psi)
        assert torch.equal(again, before)  # forward does not use P: ψ̂ computed once per person
        assert (generator.project(embedding) - psi).abs().max() > 1e-3
    with pytest.raises(ValueError, match="coefficients"):
        generator(landmark_images, psi[:, :-1])


def test_realism_score_matches_hand_computation_of_eq5(tiny):
    cfg, _, _, discriminator = tiny
    torch.manual_seed(2)
    with torch.no_grad():
        discriminator.w0.copy_(torch.randn(cfg.embedding_dim))
        discriminator.b.fill_(0.75)
    images = torch.rand(3, 3, 64, 64) * 2 - 1
    landmark_images = torch.rand(3, 3, 64, 64) * 2 - 1
    video_index = torch.tensor([4, 0, 4])
    discriminator.eval()
    with torch.no_grad():
        score, _ = discriminator(images, landmark_images, video_index)
        v, _ = discriminator.encode(images, landmark_images)
        W = discriminator.video_embeddings.weight
        for sample, i in enumerate(video_index.tolist()):
            hand = sum(float(v[sample, k]) * (float(W[i, k]) + float(discriminator.w0[k]))
                       for k in range(cfg.embedding_dim)) + 0.75  # r = V(x,y)ᵀ(W_i + w0) + b
            assert float(score[sample]) == pytest.approx(hand, rel=1e-5, abs=1e-5)
        other, _ = discriminator(images, landmark_images, torch.tensor([1, 0, 4]))
        assert float(other[0]) != pytest.approx(float(score[0]))  # the video's own column W_i matters
        assert torch.allclose(discriminator.score(v, W[video_index] + discriminator.w0), score)


def test_w_gradient_and_sparse_adam_step_scale_with_the_batch_not_the_number_of_videos():
    """150,000 videos (VoxCeleb2 scale): W's gradient holds <= batch rows; SparseAdam touches only them."""
    torch.manual_seed(3)
    cfg = preset("tiny-64").model
    discriminator = Discriminator(cfg, num_videos=150_000).train()
    batch = 4
    video_index = torch.tensor([149_999, 17, 17, 80_000])
    images = torch.rand(batch, 3, 64, 64) * 2 - 1
    score, _ = discriminator(images, images, video_index)
    torch.relu(1.0 - score).mean().backward()  # hinge loss on real images
    grad = discriminator.video_embeddings.weight.grad
    assert grad.is_sparse
    grad = grad.coalesce()
    rows = set(grad.indices()[0].tolist())
    assert rows == {149_999, 17, 80_000} and grad.values().shape[0] <= batch
    assert grad.values().numel() <= batch * cfg.embedding_dim  # memory grows with the batch
    before = discriminator.video_embeddings.weight.detach().clone()
    optimizer = torch.optim.SparseAdam([discriminator.video_embeddings.weight], lr=1e-2)
    optimizer.step()
    after = discriminator.video_embeddings.weight.detach()
    changed = set((after != before).any(dim=1).nonzero()[:, 0].tolist())
    assert changed == rows


def test_attention_resolution_the_blocks_never_reach_is_a_config_error():
    from talkinghead.config import ConfigError, apply_overrides

    with pytest.raises(ConfigError, match="attention_up_resolution=128 .* reach \\[32, 64\\]"):
        apply_overrides(preset("tiny-64"), ["model.attention_up_resolution=128"])
    with pytest.raises(ConfigError, match="attention_down_resolution=8"):
        apply_overrides(preset("paper-256"), ["model.attention_down_resolution=8"])


def test_training_step_reaches_every_network_and_channels_last_gives_the_same_images():
    torch.manual_seed(4)
    cfg = preset("tiny-64").model
    embedder, generator = Embedder(cfg).train(), Generator(cfg).train()
    frames = torch.rand(2, 3, 64, 64) * 2 - 1
    landmark_images = torch.rand(2, 3, 64, 64) * 2 - 1
    images = generator(landmark_images, generator.project(embedder(frames, landmark_images)))
    images.square().mean().backward()
    for name, module in (("embedder", embedder.blocks[0].conv1), ("P", generator.projection),
                         ("encoder", generator.down[0].conv1), ("output", generator.output_conv)):
        assert module.weight.grad is not None and float(module.weight.grad.abs().sum()) > 0, name
    generator.eval()
    psi = torch.randn(2, generator.num_adain_params)
    with torch.no_grad():
        plain = generator(landmark_images, psi)
        fast = generator.to(memory_format=torch.channels_last)(
            landmark_images.contiguous(memory_format=torch.channels_last), psi)
    assert torch.allclose(plain, fast, atol=1e-4)


def test_down_block_strided_4x4_kernel_equals_conv3x3_then_average_pool():
    import torch.nn.functional as F

    from talkinghead.models.layers import ResidualDown

    torch.manual_seed(5)
    block = ResidualDown(4, 8, normalize=False)
    x = torch.randn(2, 4, 10, 12)
    for training in (True, False):
        block.train(training)
        with torch.no_grad():
            fused = block._convolve_and_pool(x)  # training: one power iteration, then W / σ
            weight = block.conv1._divide_by_sigma()  # the same W / σ (no further iteration)
            expected = F.avg_pool2d(F.conv2d(x, weight, block.conv1.bias, padding=1), 2)
            assert torch.allclose(fused, expected, atol=1e-5)


def test_psi_layout_starts_as_identity_adain_per_layer_in_forward_order():
    """P's bias = [scale 1 | shift 0] for every AdaIN layer, in the order forward() consumes ψ̂."""
    generator = Generator(preset("tiny-64").model)
    bias = generator.projection.bias.detach()
    layers = [norm for block in list(generator.bottleneck) + list(generator.up) for norm in (block.norm1, block.norm2)]
    layers.append(generator.output_norm)
    offset = 0
    for norm in layers:
        assert torch.all(bias[offset:offset + norm.channels] == 1)  # scale
        assert torch.all(bias[offset + norm.channels:offset + 2 * norm.channels] == 0)  # shift
        offset += 2 * norm.channels
    assert offset == generator.num_adain_params
    with pytest.raises(ValueError, match="batch 2"):
        generator(torch.zeros(3, 3, 64, 64), torch.zeros(2, generator.num_adain_params))
