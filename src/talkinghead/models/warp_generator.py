"""The warp-guided generator (ours, issue 15): start from the mesh warp, learn only what warping cannot do.

For a target (driver) landmark image y and K source frames x_k of the same person, each with its landmark image
y_k and its mesh grid F_k (the piecewise-affine backward grid from the target's landmarks to the source's,
`talkinghead.landmarks.mesh.sampling_grid`, grid_sample coordinates with align_corners=False):

    per source k (shared weights, batch B*K, memory linear in K), at half resolution:
        f_k = U([y, y_k, x_k ∘ F_k, F_k - I])           flow U-Net features   [B*K, C, H/2, W/2]
        ΔF_k = up(conv_flow(f_k)),  c_k = up(conv_conf(f_k))   residual flow [.., 2, H, W], confidence logit
    mix:   g = up(conv_gate(mean_k f_k)),  gate = bounded(1 - g)
           gate = max(gate, keep(y))      keep: 1 on the driver's landmark lines (model.warp_keep_contours)
           w_k = gate · r_k + (1 - gate) · softmax_k(c_k)
                 r_k: the rule's weights from the landmark distances d_k (``model.source_blend``: onehot(argmin_k d_k),
                 or the smooth inverse-distance weights of `source_choice`, passed as ``WarpSources.weights``)
           W = Σ_k w_k · (x_k ∘ (F_k + ΔF_k))                                      mixed warp [B, 3, H, W]
           ΔF_k is bounded to ``model.warp_flow_limit`` pixels (limit · tanh(ΔF / limit)) when that is > 0
    synthesis (AdaIN, ψ̂ = P ê as in the paper's G): S, m = G_AdaIN([W, y]; ψ̂),  mask = bounded(1 - prior - m)
           (``model.synthesis_mask=prior``: m = 0, the learned mask head unused)
           prior: 0, or with ``model.synthesis_prior`` the landmark prior of `landmarks.synthesis_prior` (the
           driver's inner mouth where no source shows one; with ``model.stretch_limit`` also where the mesh
           stretches or folds a source; with ``model.lid_prior`` shut eyes over open ones): synthesis owns those
           pixels from the start. With ``model.prior_input`` G_AdaIN's input is [W, y, prior parts], and with
           ``model.prior_hole`` W is blanked (W · (1 − part)) over the lid part or the whole prior.
    output = mask · W + (1 - mask) · S   in [-1, 1]

Initialization: conv_flow, conv_gate and the mask head start at exactly zero, so ΔF = 0, gate = 1, mask = 1 and
the untrained network outputs grid_sample(x_n, F_n) of the nearest source n, bit for bit; gradients still reach
every head at step 0 and the rest of the network from step 1.

Two choices keep the learned parts alive (measured: with a plain clamp the mask head's first update pushed m below
0 everywhere, because an untrained synthesis is worse than the warp at every pixel; the clamp then blocked every
later gradient and neither the mask nor the synthesis branch, nor ψ′ in fine-tuning, ever trained again):
- gate and mask use `bounded`: clamp(·, 0, 1) forward; backward passes the gradient inside [0, 1] and, at or past
  a bound, only when it points back inside. A head at its bound stays there for free and leaves it as soon as the
  loss asks, instead of drifting away (straight-through) or going deaf (clamp).
- the synthesis branch always receives SYNTHESIS_GRADIENT of the output's gradient, as if it owned that share of
  every pixel: ``output + ε (S − S.detach())`` adds exactly 0 to the output and ε ∂L/∂output to S. So S learns to
  render the target where the warp already does, and is ready where the mask opens (mouth interior, disocclusions).

Where sources are mixed (gate < 1), two warps that disagree by a pixel double the edges: the mix scores better on
SSIM than one source, but a landmark detector finds the eyes, lips and jaw a little off (training clips, T = 8,
mesh warps: SSIM 0.818 -> 0.825, AKD 0.989 -> 1.050 px). So with ``model.warp_keep_contours`` the nearest source
alone supplies the pixels on and around the driver's landmark lines, where the detector and a viewer look
(AKD 0.977, SSIM 0.824 in that study); the learned mix works everywhere else. Off by default: on held-out people
with the shipped weights it did not lower AKD (config.py has the figures). The exact initialization is kept
(gate = 1 already means the nearest source everywhere).

Costs are kept small for real-time CPU animation: the flow U-Net and the confidences run at half resolution
(a stride-2 first conv, bilinear upsampling of the flow and logits), the synthesis branch renders at half
resolution and is upsampled before its output convolutions; only grid_sample and the blend run per full-res pixel.

The same weights render at any size R (issue 26): with ``WarpSources.detail_images`` (the sources at R) everything
above runs at H x W as trained, then F_k + ΔF_k, c_k, g, S and m are upsampled bilinearly to R and the final warp
and blend run there. The output is as sharp as the sources at R rather than an enlarged H x W frame (sharpness at
512 0.91x the mesh warp's at 512 on the shipped model, against 0.01x for an enlarged 128 frame).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from talkinghead.config import ModelConfig
from talkinghead.landmarks.synthesis_prior import PRIOR_PARTS
from talkinghead.models.layers import AdaptiveInstanceNorm, ResidualAdaIN, ResidualDown, ResidualUp, SNConv2d, SNLinear

LIDS = PRIOR_PARTS.index("lids")
"""The lid part's channel in the prior's parts."""


@dataclass
class WarpSources:
    """K source frames per target frame, as the warp generator consumes them.

    images [B, K, 3, H, W] in [-1, 1]; landmark_images [B, K, 3, H, W]; grids [B, K, H, W, 2] (mesh grid from the
    target to each source, grid_sample coordinates, align_corners=False); distances [B, K] (normalized landmark
    distance to the target; smaller = nearer); optionally detail_images [B, K, 3, R, R] to render at R."""

    images: torch.Tensor
    landmark_images: torch.Tensor
    grids: torch.Tensor
    distances: torch.Tensor
    detail_images: torch.Tensor | None = None
    """The same source crops at the output resolution R, [B, K, 3, R, R] (None: the output is H x W). The learned
    parts still run at H x W; only the final warp samples these (`WarpGenerator.render`)."""
    weights: torch.Tensor | None = None
    """[B, K], each row summing to 1: the share of each source where the learned gate keeps to the rule
    (``model.source_blend``, `talkinghead.models.source_choice`); or per pixel, [B, K, H, W] summing to 1 over K
    (``model.mouth_blend_power``: the mouth's own shares, `talkinghead.landmarks.mouth_region`); None = the nearest
    source alone."""
    prior: torch.Tensor | None = None
    """[B, 1, H, W] in [0, 1]: where no source shows what the target needs (the driver's open inner mouth over
    closed source mouths, stretched or folded mesh with ``model.stretch_limit``, shut eyes over open ones with
    ``model.lid_prior``: `talkinghead.landmarks.synthesis_prior`); with ``model.synthesis_prior`` the blend starts
    on the synthesis branch there. Or its parts [B, 3, H, W] (``synthesis_prior(..., parts=True)``), which
    ``model.prior_input`` needs; the prior is then their maximum. None = nowhere."""

    OPTIONAL = ("detail_images", "weights", "prior")
    """The optional fields, in the order the tensor-only runtimes pass them (`talkinghead.runtime`)."""

    @classmethod
    def from_batch(cls, batch: dict[str, torch.Tensor]) -> WarpSources:
        """From an episode batch (data/episodes.py) built with ``EpisodeDataset(..., warp_sources=True)``."""
        missing = [key for key in ("source_images", "source_landmark_images", "source_grids", "source_distances")
                   if key not in batch]
        if missing:
            raise KeyError(f"the batch has no {missing}: the warp generator needs episodes built with "
                           "EpisodeDataset(..., warp_sources=True) (model.generator='warp')")
        return cls(batch["source_images"], batch["source_landmark_images"], batch["source_grids"],
                   batch["source_distances"], weights=batch.get("source_weights"), prior=batch.get("synthesis_prior"))

    def first(self, n: int) -> WarpSources:
        """The first ``n`` sources (episodes order theirs nearest first when the generator takes fewer than K:
        `EpisodeDataset(generator_sources=...)`), weights renormalized."""
        if self.count <= n:
            return self
        weights = None if self.weights is None else self.weights[:, :n]
        weights = None if weights is None else weights / weights.sum(1, keepdim=True).clamp_min(1e-12)
        detail = None if self.detail_images is None else self.detail_images[:, :n]
        return WarpSources(self.images[:, :n], self.landmark_images[:, :n], self.grids[:, :n], self.distances[:, :n],
                           detail, weights, self.prior)

    @property
    def count(self) -> int:
        """K, the sources per target."""
        return self.distances.shape[1]

    def nearest(self, n: int) -> WarpSources:
        """The ``n`` nearest sources of each target (all when K <= n), nearest first. Inference keeps
        ``model.inference_sources`` of them, so the cost per frame does not grow with T."""
        if self.count <= n:
            return self
        order = self.distances.argsort(dim=1)[:, :n]  # [B, n]

        def pick(tensor: torch.Tensor) -> torch.Tensor:
            index = order.reshape(*order.shape, *([1] * (tensor.dim() - 2))).expand(-1, -1, *tensor.shape[2:])
            return tensor.gather(1, index)

        detail = None if self.detail_images is None else pick(self.detail_images)
        weights = None if self.weights is None else pick(self.weights)
        weights = None if weights is None else weights / weights.sum(1, keepdim=True).clamp_min(1e-12)
        return WarpSources(pick(self.images), pick(self.landmark_images), pick(self.grids), pick(self.distances),
                           detail, weights, self.prior)

    def to(self, device: torch.device | str) -> WarpSources:
        def move(tensor: torch.Tensor | None) -> torch.Tensor | None:
            return None if tensor is None else tensor.to(device)

        return WarpSources(self.images.to(device), self.landmark_images.to(device), self.grids.to(device),
                           self.distances.to(device), move(self.detail_images), move(self.weights), move(self.prior))

    def check(self, batch: int, height: int, width: int) -> None:
        """Shapes agree with a target batch of ``batch`` frames of ``height`` x ``width``; else a ValueError."""
        k = self.distances.shape[1] if self.distances.dim() == 2 else -1
        expected = {"images": (batch, k, 3, height, width), "landmark_images": (batch, k, 3, height, width),
                    "grids": (batch, k, height, width, 2), "distances": (batch, k)}
        for name, shape in expected.items():
            if tuple(getattr(self, name).shape) != shape or k < 1:
                raise ValueError(f"WarpSources.{name} has shape {tuple(getattr(self, name).shape)}, expected {shape} "
                                 f"for {batch} target frames of {height}x{width} and K = {k} sources")
        detail = self.detail_images
        if detail is not None and (detail.dim() != 5 or tuple(detail.shape[:3]) != (batch, k, 3)):
            raise ValueError(f"WarpSources.detail_images has shape {tuple(detail.shape)}, expected "
                             f"({batch}, {k}, 3, R, R): the {k} sources of each of {batch} frames at the output size")
        if self.weights is not None and tuple(self.weights.shape) not in ((batch, k), (batch, k, height, width)):
            raise ValueError(f"WarpSources.weights has shape {tuple(self.weights.shape)}, expected ({batch}, {k}) or, "
                             f"per pixel, ({batch}, {k}, {height}, {width})")
        if self.prior is not None and tuple(self.prior.shape) not in ((batch, 1, height, width),
                                                                      (batch, len(PRIOR_PARTS), height, width)):
            raise ValueError(f"WarpSources.prior has shape {tuple(self.prior.shape)}, expected "
                             f"({batch}, 1, {height}, {width}) (the prior) or ({batch}, {len(PRIOR_PARTS)}, {height}, "
                             f"{width}) (its parts, {', '.join(PRIOR_PARTS)})")


def identity_grid(height: int, width: int, device: torch.device | None = None,
                  dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """[H, W, 2] grid sampling every pixel at its own centre (align_corners=False): x_norm = (2x + 1) / W - 1."""
    xs = (2 * torch.arange(width, device=device, dtype=dtype) + 1) / width - 1
    ys = (2 * torch.arange(height, device=device, dtype=dtype) + 1) / height - 1
    return torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1)


def sample(images: torch.Tensor, grids: torch.Tensor) -> torch.Tensor:
    """The one warp convention: bilinear grid_sample, border padding, align_corners=False.
    images [N, C, H, W], grids [N, H', W', 2] -> [N, C, H', W']."""
    return F.grid_sample(images, grids, mode="bilinear", padding_mode="border", align_corners=False)


SYNTHESIS_GRADIENT = 0.1
"""ε: the share of the output's gradient the synthesis branch always receives (module docstring)."""


class _Bounded(torch.autograd.Function):
    """clamp(x, 0, 1); the gradient passes inside [0, 1], and at or beyond a bound only if descent moves x inward."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        return x.clamp(0, 1)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        (x,) = ctx.saved_tensors
        # Gradient descent moves x by −grad: inward at the lower bound means grad < 0, at the upper grad > 0.
        passes = ((x > 0) & (x < 1)) | ((x <= 0) & (grad < 0)) | ((x >= 1) & (grad > 0))
        return grad * passes


def bounded(x: torch.Tensor) -> torch.Tensor:
    """clamp(x, 0, 1) whose gradient never pushes x further out of [0, 1] and never strands it there.

    Without a gradient to shape (inference, tracing, export) it is the plain clamp, the same values: the autograd
    Function would otherwise stay in a TorchScript trace as a Python op that re-enters Python on every frame."""
    if not (torch.is_grad_enabled() and x.requires_grad):
        return x.clamp(0, 1)
    return _Bounded.apply(x)


def _upsample(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    # Contiguous first: on CPU, bilinear upsampling of few channels is ~4x slower in channels-last memory.
    return F.interpolate(x.contiguous(), size=size, mode="bilinear", align_corners=False)


def _gaussian_kernel(sigma: int) -> torch.Tensor:
    """[1, 1, 4σ+1, 4σ+1] normalized Gaussian."""
    offsets = torch.arange(-2 * sigma, 2 * sigma + 1, dtype=torch.float32)
    line = torch.exp(-offsets**2 / (2.0 * sigma**2))
    kernel = line[:, None] * line[None, :]
    return (kernel / kernel.sum())[None, None]


def _zero_conv(in_channels: int, out_channels: int) -> nn.Conv2d:
    """A 3x3 conv whose weight and bias start at exactly zero (plain: spectral norm of a zero weight is 0/0)."""
    conv = nn.Conv2d(in_channels, out_channels, 3, padding=1)
    nn.init.zeros_(conv.weight)
    nn.init.zeros_(conv.bias)
    return conv


def _widths(channels: int, levels: int, max_channels: int) -> list[int]:
    """Channels per level: C at the top, 2C below (capped): deeper levels get cheaper, not dearer."""
    return [channels] + [min(2 * channels, max(max_channels, channels))] * (levels - 1)


class FlowNetwork(nn.Module):
    """Per-source U-Net: [B*K, 11, H, W] -> features [B*K, C, H/2, W/2].

    stem: conv3x3/2 (11 -> C); ``levels`` x [conv4x4/2 - conv3x3] (2C channels); decoder per level: conv3x3 at the
    low resolution (to the skip's channels) - nearest x2 - add the skip. LeakyReLU(0.2), no normalization."""

    IN_CHANNELS = 11  # target landmark image 3 + source landmark image 3 + warped source 3 + mesh flow 2

    def __init__(self, channels: int, levels: int, max_channels: int) -> None:
        super().__init__()
        widths = _widths(channels, levels + 1, max_channels)
        self.out_channels = widths[0]
        self.stem = nn.Conv2d(self.IN_CHANNELS, widths[0], 3, stride=2, padding=1)
        self.down = nn.ModuleList(
            nn.Sequential(nn.Conv2d(widths[level], widths[level + 1], 4, stride=2, padding=1),
                          nn.LeakyReLU(0.2, inplace=True),
                          nn.Conv2d(widths[level + 1], widths[level + 1], 3, padding=1),
                          nn.LeakyReLU(0.2, inplace=True))
            for level in range(levels))
        self.up = nn.ModuleList(nn.Conv2d(widths[level + 1], widths[level], 3, padding=1) for level in range(levels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.leaky_relu(self.stem(x), 0.2, inplace=True)
        skips = [h]
        for block in self.down:
            h = block(h)
            skips.append(h)
        skips.pop()
        for block in reversed(self.up):
            skip = skips.pop()
            h = F.interpolate(block(h), size=skip.shape[-2:], mode="nearest").add_(skip)
            h = F.leaky_relu(h, 0.2, inplace=True)
        return h


class SynthesisBranch(nn.Module):
    """AdaIN-conditioned decoder for the pixels no source supplies: [mixed warp, target landmark image] -> RGB, m
    (``in_channels`` 9 with ``model.prior_input``: the synthesis prior's three parts as well).

    encoder: ``levels`` residual down blocks (plain IN) from H to H/2**levels; one AdaIN residual block there;
    ``levels - 1`` AdaIN residual up blocks back to H/2, each adding the encoder's features of its resolution;
    AdaIN - ReLU - bilinear x2 - SN conv3x3 -> 3 - tanh (RGB), and a zero-initialized conv3x3 -> 1 (m)."""

    def __init__(self, channels: int, levels: int, max_channels: int, in_channels: int = 6) -> None:
        super().__init__()
        widths = _widths(channels, levels, max_channels)
        self.down = nn.ModuleList()
        previous = in_channels
        for level, width in enumerate(widths):
            self.down.append(ResidualDown(previous, width, normalize=True, preactivate=level > 0))
            previous = width
        self.bottleneck = ResidualAdaIN(widths[-1])
        self.up = nn.ModuleList(ResidualUp(widths[level], widths[level - 1]) for level in range(levels - 1, 0, -1))
        self.output_norm = AdaptiveInstanceNorm(widths[0])
        self.output_conv = SNConv2d(widths[0], 3, 3)
        self.mask_head = _zero_conv(widths[0], 1)
        self.adain_sizes = [self.bottleneck.num_adain_params, *(b.num_adain_params for b in self.up),
                            self.output_norm.num_params]

    def forward(self, x: torch.Tensor, psi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        coefficients = list(psi.split(self.adain_sizes, dim=1))
        skips = []
        h = x
        for block in self.down:
            h = block(h)
            skips.append(h)
        skips.pop()
        h = self.bottleneck(h, coefficients.pop(0))
        for block in self.up:
            h = block(h, coefficients.pop(0)) + skips.pop()
        h = torch.relu_(self.output_norm(h, coefficients.pop(0)))
        h = _upsample(h, x.shape[-2:])
        return torch.tanh(self.output_conv(h)), self.mask_head(h)


class WarpGenerator(nn.Module):
    """``generator(landmark_images [B,3,H,W], psi [B or 1, num_adain_params], sources: WarpSources)``
    -> images [B, 3, H, W] in [-1, 1] (module docstring). ψ̂ = P ê with P = ``.projection``."""

    needs_sources = True

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.flow_network = FlowNetwork(cfg.warp_channels, cfg.warp_levels, cfg.max_channels)
        width = self.flow_network.out_channels
        self.flow_head = _zero_conv(width, 2)  # ΔF_k, grid_sample units
        self.confidence_head = nn.Conv2d(width, 1, 3, padding=1)  # c_k
        self.gate_head = _zero_conv(width, 1)  # g
        self.synthesis = SynthesisBranch(cfg.synthesis_channels, cfg.synthesis_levels, cfg.max_channels,
                                         in_channels=6 + (len(PRIOR_PARTS) if cfg.prior_input else 0))
        self.num_adain_params = sum(self.synthesis.adain_sizes)
        self.projection = SNLinear(cfg.embedding_dim, self.num_adain_params)  # P
        with torch.no_grad():
            self.projection.bias.copy_(self._identity_coefficients())
        self.contour_radius = max(1, round(cfg.image_size / 128))
        self.register_buffer("contour_kernel", _gaussian_kernel(self.contour_radius), persistent=False)
        hole_kernel = _gaussian_kernel(max(1, round(4 * cfg.image_size / 128)))  # model.prior_hole_fill=surround
        self.register_buffer("hole_kernel", hole_kernel.sum(-2, keepdim=True), persistent=False)  # [1, 1, 1, k]

    def _identity_coefficients(self) -> torch.Tensor:
        """ψ̂ of an identity AdaIN (scale 1, shift 0 everywhere), in forward order: [num_adain_params]."""
        parts = []
        for module in self.synthesis.modules():  # registration order: bottleneck, up blocks, output norm
            if isinstance(module, AdaptiveInstanceNorm):
                parts += [torch.ones(module.channels), torch.zeros(module.channels)]
        return torch.cat(parts)

    def project(self, embedding: torch.Tensor) -> torch.Tensor:
        """ψ̂ = P ê: [B, N] -> [B, num_adain_params]. Compute once per person, reuse for every frame."""
        return self.projection(embedding)

    def contour_keep(self, landmark_images: torch.Tensor) -> torch.Tensor:
        """[B, 3, H, W] landmark images in [-1, 1] -> [B, 1, H, W] in [0, 1]: 1 on and around the drawn landmark
        lines (dilated by r = H/128 px on each side, then a Gaussian of sigma r), 0 away from them."""
        radius = self.contour_radius
        lines = ((landmark_images.amax(1, keepdim=True) + 1) / 2).clamp(0, 1)
        band = F.max_pool2d(lines, 2 * radius + 1, stride=1, padding=radius)
        return F.conv2d(band, self.contour_kernel.to(band.dtype), padding=2 * radius).clamp(0, 1)

    def _pool(self, x: torch.Tensor) -> torch.Tensor:
        """The learned parts' input: the frame average-pooled by ``model.warp_pool`` (1 = as is)."""
        return F.avg_pool2d(x, self.cfg.warp_pool) if self.cfg.warp_pool > 1 else x

    def _fill_hole(self, warp: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
        """What the synthesis branch sees of the warp [B, 3, H, W] with ``hole`` [B, 1, H, W] in [0, 1]: W · (1 − hole),
        plus, with ``model.prior_hole_fill=surround``, the warp around the hole spread into it (normalized blur)."""
        seen = warp * (1 - hole)
        if self.cfg.prior_hole_fill == "surround":
            seen = seen + hole * self._surround(warp, hole)
        return seen

    def _surround(self, warp: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
        """[B, 3, H, W]: the warp around ``hole`` spread into it, a normalized Gaussian (σ = 4 px at 128) of
        W · (1 − hole) over one of (1 − hole)."""
        keep = 1 - hole
        line = self.hole_kernel.to(warp.dtype)  # [1, 1, 1, k]: the Gaussian in two separable passes
        pad = line.shape[-1] // 2
        spread = torch.cat([warp * keep, keep], 1).flatten(0, 1)[:, None]  # [B*4, 1, H, W]
        spread = F.conv2d(F.conv2d(spread, line, padding=(0, pad)), line.transpose(-1, -2), padding=(pad, 0))
        spread = spread.unflatten(0, (warp.shape[0], 4))[:, :, 0]  # [B, 4, H, W]: blurred W·keep and keep
        return spread[:, :3] / spread[:, 3:].clamp_min(1e-3)

    def _match_lid_colour(self, synthesis: torch.Tensor, warp: torch.Tensor, lids: torch.Tensor) -> torch.Tensor:
        """``model.lid_colour_match``: the synthesis [B, 3, H, W] shifted inside the lid part ``lids`` [B, 1, H, W]
        so that its mean colour there (weighted by the part) is the mean of the skin around it (`_surround`):
        S + lids · (μ_surround − μ_S). The painted lid keeps its shading and lash line, in this face's colour."""
        weight = lids.sum((2, 3), keepdim=True).clamp_min(1e-6)  # [B, 1, 1, 1]
        skin = (self._surround(warp, lids) * lids).sum((2, 3), keepdim=True) / weight
        painted = (synthesis * lids).sum((2, 3), keepdim=True) / weight
        return synthesis + lids * (skin - painted)

    def _prior_parts(self, sources: WarpSources) -> torch.Tensor | None:
        """The sources' prior as this config uses it: None without ``model.synthesis_prior``; [B, 3, H, W] (its
        parts) with ``model.prior_input``; else [B, 1, H, W] or [B, 3, H, W] as carried. Refuses what is missing."""
        if not self.cfg.synthesis_prior:
            return None
        if sources.prior is None:
            raise ValueError("model.synthesis_prior is on but the sources carry no prior (WarpSources.prior): "
                             "build them with talkinghead.landmarks.synthesis_prior")
        if self.cfg.prior_input and sources.prior.shape[1] != len(PRIOR_PARTS):
            raise ValueError(f"model.prior_input shows the synthesis branch the prior's {len(PRIOR_PARTS)} parts, but "
                             f"WarpSources.prior has {sources.prior.shape[1]} channel(s): build it with "
                             "synthesis_prior(..., parts=True)")
        return sources.prior

    def forward(self, landmark_images: torch.Tensor, psi: torch.Tensor, sources: WarpSources) -> torch.Tensor:
        return self.render(landmark_images, psi, sources)["output"]

    def render(self, landmark_images: torch.Tensor, psi: torch.Tensor,
               sources: WarpSources) -> dict[str, torch.Tensor]:
        """The output and its parts: ``output``, ``mixed_warp``, ``synthesis`` [B, 3, H, W]; ``mask``, ``gate``
        [B, 1, H, W]; ``weights`` [B, K, 1, H, W]; ``residual_flow`` [B, K, H, W, 2].

        With ``sources.detail_images`` [B, K, 3, R, R] the output and its parts are at R x R instead (the residual
        flow stays at H x W; resolution-independent rendering, issue 26): the learned parts run at H x W as
        trained, then the sampling grid (mesh grid + residual flow), the confidences, gate, synthesis and mask are
        upsampled to R and the detail images are warped there, so the output is as sharp as the sources at R.
        Detail images equal to ``images`` give the H x W output exactly."""
        batch, _, height, width = landmark_images.shape
        sources.check(batch, height, width)
        if psi.shape[-1] != self.num_adain_params:
            raise ValueError(f"psi has {psi.shape[-1]} coefficients; this generator's AdaIN layers need "
                             f"{self.num_adain_params} (use generator.project(embedding))")
        if psi.shape[0] != batch:
            if psi.shape[0] != 1:
                raise ValueError(f"psi has batch {psi.shape[0]} but landmark_images {batch}; "
                                 "pass one psi per frame or a single psi [1, P] for all frames")
            psi = psi.expand(batch, -1)  # one person, many frames
        k = sources.count
        size = (height, width)
        images = sources.images.flatten(0, 1)  # [B, K, 3, H, W] -> [B*K, 3, H, W]
        grids = sources.grids.flatten(0, 1)  # [B*K, H, W, 2]
        warped = sample(images, grids)  # x_k ∘ F_k
        mesh_flow = (grids - identity_grid(height, width, grids.device, grids.dtype)).permute(0, 3, 1, 2)
        targets = landmark_images[:, None].expand(-1, k, -1, -1, -1).flatten(0, 1)  # [B*K, 3, H, W]
        flow_input = torch.cat([targets, sources.landmark_images.flatten(0, 1), warped, mesh_flow], 1)
        features = self.flow_network(self._pool(flow_input))  # [B*K, C, H/2p, W/2p], p = model.warp_pool

        flow = self.flow_head(features)  # ΔF_k at the features' resolution [B*K, 2, h, w]
        if self.cfg.warp_flow_limit > 0:  # limit · tanh(ΔF / limit), in grid units (2 / W per pixel)
            limit = 2.0 * self.cfg.warp_flow_limit / width
            flow = limit * torch.tanh(flow / limit)
        confidence = self.confidence_head(features)  # c_k [B*K, 1, h, w]
        g = self.gate_head(features.unflatten(0, (batch, k)).mean(1))  # [B, 1, h, w]
        keep = self.contour_keep(landmark_images) if self.cfg.warp_keep_contours else None
        if sources.weights is not None:  # the rule's share of each source (model.source_blend)
            nearest = sources.weights.to(sources.distances.dtype)
        else:  # the nearest alone
            nearest = torch.zeros_like(sources.distances).scatter_(1, sources.distances.argmin(1, keepdim=True), 1.0)
        residual_flow = _upsample(flow, size).permute(0, 2, 3, 1)  # ΔF_k [B*K, H, W, 2]
        sampling = grids + residual_flow  # F_k + ΔF_k
        mixed, parts = self._mix(images, sampling, confidence, g, keep, nearest, size)  # [B, 3, H, W]
        parts["residual_flow"] = residual_flow.unflatten(0, (batch, k))

        prior_parts = self._prior_parts(sources)  # [B, C, H, W]: 1 channel (the prior) or 3 (its parts)
        seen, shown = mixed, []
        if self.cfg.prior_input:  # the parts: which region is which
            shown = [prior_parts.to(mixed.dtype)]
            lid_part = shown[0][:, LIDS:LIDS + 1]  # [B, 1, H, W]
            if self.cfg.prior_hole != "none":  # W · (1 − part): the branch paints the hole, not the warp's content
                hole = lid_part if self.cfg.prior_hole == "lids" else shown[0].amax(1, keepdim=True)
                seen = self._fill_hole(mixed, hole)
        synthesis, m = self.synthesis(self._pool(torch.cat([seen, landmark_images, *shown], 1)), psi)
        if self.cfg.lid_colour_match:  # the painted lid in the colour of the skin around it, at the branch's size
            synthesis = self._match_lid_colour(synthesis, self._pool(mixed), self._pool(lid_part))
        if sources.detail_images is not None:  # the final warp at the detail images' size R
            size = (sources.detail_images.shape[-2], sources.detail_images.shape[-1])
            if size != (height, width):
                sampling = _upsample(sampling.permute(0, 3, 1, 2), size).permute(0, 2, 3, 1)  # [B*K, R, R, 2]
                keep = None if keep is None else _upsample(keep, size)
            if k == 1 and not torch.is_grad_enabled():  # one source: its weight is 1 (gate, weights stay at H x W)
                mixed = sample(sources.detail_images[:, 0], sampling)  # [B, 3, R, R]
            else:
                mixed, detail_parts = self._mix(sources.detail_images.flatten(0, 1), sampling, confidence, g, keep,
                                                nearest, size)  # [B, 3, R, R]
                parts.update(detail_parts)
        if self.cfg.synthesis_mask == "prior":  # the learned head unused: synthesis only where the prior says
            m = torch.zeros_like(m)
        if prior_parts is not None:
            prior = prior_parts.amax(1, keepdim=True).to(m.dtype)  # the prior: the largest of its parts
            parts["prior"] = prior
            m = m + (_upsample(prior, m.shape[-2:]) if prior.shape[-2:] != m.shape[-2:] else prior)
        if synthesis.shape[-2:] != size:  # in one 4-channel call: on CPU, 3 channels take ~3x as long as 4
            synthesis, m = _upsample(torch.cat([synthesis, m], 1), size).split([3, 1], dim=1)
        mask = bounded(1 - m)  # 1 − prior − m_learned: synthesis owns the prior's pixels at the start
        output = torch.lerp(synthesis, mixed, mask)  # mask · W + (1 − mask) · S in one pass; exactly W at mask = 1
        if torch.is_grad_enabled():  # + 0 (two passes over the frame: skipped without a gradient to pass)
            output = output + SYNTHESIS_GRADIENT * (synthesis - synthesis.detach())  # S always learns (docstring)
        return {"output": output, "mixed_warp": mixed, "synthesis": synthesis, "mask": mask, **parts}

    def _mix(self, images: torch.Tensor, sampling: torch.Tensor, confidence: torch.Tensor, g: torch.Tensor,
             keep: torch.Tensor | None, nearest: torch.Tensor,
             size: tuple[int, int]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The re-warped sources mixed per pixel at ``size`` (the heads' logits upsampled to it): images
        [B*K, 3, ., .] sampled at ``sampling`` [B*K, *size, 2] -> mixed [B, 3, *size] and its gate and weights."""
        batch, k = nearest.shape[:2]
        rewarped = sample(images, sampling).unflatten(0, (batch, k))  # x_k ∘ (F_k + ΔF_k) [B, K, 3, H, W]
        logits = _upsample(confidence, size).unflatten(0, (batch, k))  # [B, K, 1, H, W]
        gate = bounded(1 - _upsample(g, size))  # [B, 1, H, W]
        if keep is not None:
            gate = torch.maximum(gate, keep)  # the nearest source on the lines
        if nearest.dim() == 2:  # one share per source: [B, K, 1, 1, 1]
            rule = nearest[:, :, None, None, None]
        else:  # per pixel (the mouth's own shares): [B, K, 1, H, W] at this size
            rule = (nearest if nearest.shape[-2:] == size else _upsample(nearest, size))[:, :, None]
        weights = gate[:, None] * rule + (1 - gate[:, None]) * logits.softmax(1)
        mixed = (weights * rewarped).sum(1)  # [B, 3, H, W]
        return mixed, {"gate": gate, "weights": weights}
