"""``shapes``: an embedded, procedurally generated multimodal world.

Everything runs offline with no download. Each sample is one coloured shape
(plus a grey distractor dot) seen through every modality:

* ``image``: ``image_size`` px RGB (uint8 ``[H, W, 3]``);
* ``text`` / ``text_zh``: an English and a Chinese caption of the *same*
  template, so a caption and its translation can be retrieved cross-lingually;
* ``audio``: a tone whose pitch encodes the colour, timbre (waveform) the
  shape, loudness envelope the size and pitch glide the direction;
* ``video``: ``frames`` frames of the shape moving in ``direction``;
* targets ``label`` (= shape), ``shape``, ``color``, ``size``, ``direction``
  and ``combo`` (shape x colour, for zero-shot).

**An interaction task** (``interaction=K``, K >= 2; off by default): each
sample also gets an image cue ``a`` (the background brightness, one of K
levels) and a text cue ``b`` (a marker word appended to both captions,
"marked beta" / "标记乙"), drawn independently and uniformly. The target
``interaction`` is ``(a + b) mod K``. With a and b independent and uniform,
the target is independent of either cue alone, so no single modality is
above chance (1/K): a model must combine both, not add their evidence. It is
how a fusion ablation on clean data can tell strategies apart. Difficulty:
``K`` (more levels: harder), ``interaction_contrast`` (brightness step, 1.0
is 120 grey levels over the K levels; lower is harder against the texture
noise) and ``interaction_flip`` (the fraction of samples whose text cue is
replaced by a random one: label noise the model cannot remove; the best
possible accuracy is ``1 - flip * (K - 1) / K``). The cues use their own
random stream, so every other field is identical with the task on or off.

Splits ``train``/``val``/``test`` draw from the seen (shape, colour)
combinations; ``zeroshot`` draws only from held-out combinations that never
occur in the other splits (every shape and every colour still does). The
whole split is generated at construction with numpy, vectorised over
samples, so 10,000 samples take about a second. Generation is deterministic
given ``seed`` and ``split``.
"""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np

from polymodal.data import AudioClip
from polymodal.errors import DataError

SHAPES = ("circle", "square", "triangle", "diamond", "cross")
COLORS = ("red", "green", "blue", "yellow", "magenta", "cyan")
SIZES = ("small", "medium", "large")
DIRECTIONS = ("left", "right", "up", "down")

SHAPES_ZH = ("圆形", "正方形", "三角形", "菱形", "十字")
COLORS_ZH = ("红色", "绿色", "蓝色", "黄色", "紫色", "青色")
SIZES_ZH = ("小", "中等", "大")
DIRECTIONS_ZH = ("向左", "向右", "向上", "向下")
#: Marker words of the interaction task's text cue (the first K are used).
CUES = ("alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta")
CUES_ZH = ("甲", "乙", "丙", "丁", "戊", "己", "庚", "辛")

_RGB = np.array([[220, 40, 40], [40, 190, 60], [50, 80, 230], [235, 215, 40], [210, 50, 210], [40, 210, 220]],
                dtype=np.float32)
# Colour -> pitch (Hz): a C-major-ish ladder, spaced for easy separation.
_PITCH = np.array([262.0, 330.0, 392.0, 494.0, 587.0, 698.0], dtype=np.float32)
_RADIUS = np.array([0.16, 0.23, 0.30], dtype=np.float32)  # fraction of the image side
_DIR_VEC = np.array([[-1, 0], [1, 0], [0, -1], [0, 1]], dtype=np.float32)  # (dx, dy), image y points down

TEMPLATES_EN = (
    "a {size} {color} {shape} moving {direction}",
    "there is a {color} {shape} going {direction}",
    "the {shape} is {color} and {size}",
    "a picture of a {size} {color} {shape}",
)
TEMPLATES_ZH = (
    "一个{size}的{color}{shape}{direction}移动",
    "有一个{color}{shape}正在{direction}走",
    "这个{shape}是{color}的，{size}的",
    "一张{size}的{color}{shape}的图片",
)

SPLITS = ("train", "val", "test", "zeroshot")
DEFAULT_SIZES = {"train": 2000, "val": 500, "test": 500, "zeroshot": 500}


def heldout_combos() -> frozenset[tuple[int, int]]:
    """The (shape, colour) pairs reserved for the ``zeroshot`` split: one per shape, distinct colours."""
    return frozenset((s, (2 * s + 1) % len(COLORS)) for s in range(len(SHAPES)))


def _shape_mask(shape: int, dx: np.ndarray, dy: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Boolean inside-shape mask; ``dx`` ``[..., 1, W]`` and ``dy`` ``[..., H, 1]`` are offsets from the centre.

    Offsets are separable, so only the final comparison is full-size.
    """
    ax, ay = np.abs(dx), np.abs(dy)
    if shape == 0:  # circle
        return dx * dx + dy * dy <= r * r
    if shape == 1:  # square
        return (ax <= r * 0.85) & (ay <= r * 0.85)
    if shape == 2:  # triangle pointing up
        return (dy <= r * 0.75) & (dy >= -r) & (ax <= (dy + r) * 0.6)
    if shape == 3:  # diamond
        return ax + ay <= r * 1.1
    return ((ax <= r * 0.3) & (ay <= r)) | ((ay <= r * 0.3) & (ax <= r))  # cross


class ShapesDataset:
    """Map-style dataset of generated samples (see the module docstring)."""

    name = "shapes"
    fields = {"image": "image", "text": "text", "text_zh": "text", "audio": "audio", "video": "video"}
    targets = ["label", "shape", "color", "size", "direction", "combo"]
    shape_names = list(SHAPES)
    color_names = list(COLORS)
    size_names = list(SIZES)
    direction_names = list(DIRECTIONS)

    def __init__(
        self,
        root: str | None = None,
        split: str = "train",
        num_samples: int | None = None,
        seed: int = 0,
        image_size: int = 32,
        frames: int = 8,
        sample_rate: int = 8000,
        audio_seconds: float = 0.25,
        distractors: int = 1,
        noise: float = 0.03,
        interaction: int = 0,
        interaction_contrast: float = 1.0,
        interaction_flip: float = 0.0,
    ) -> None:
        if split not in SPLITS:
            raise DataError(f"dataset 'shapes': unknown split {split!r}; splits are {', '.join(SPLITS)}")
        n = DEFAULT_SIZES[split] if num_samples is None else int(num_samples)
        if n < 0 or image_size < 8 or frames < 1 or sample_rate < 1000 or audio_seconds <= 0 or distractors < 0:
            raise DataError(
                "dataset 'shapes': need num_samples >= 0, image_size >= 8, frames >= 1, sample_rate >= 1000, "
                "audio_seconds > 0, distractors >= 0"
            )
        if interaction == 1 or not 0 <= interaction <= len(CUES) or not 0 < interaction_contrast <= 2 \
                or not 0 <= interaction_flip <= 1:
            raise DataError(
                f"dataset 'shapes': interaction must be 0 (off) or 2..{len(CUES)}, interaction_contrast in (0, 2] "
                f"and interaction_flip in [0, 1] (got {interaction}, {interaction_contrast}, {interaction_flip})"
            )
        self.root = None  # nothing on disk; kept for the dataset protocol
        # Sample ids name the sample, so a paired test never pairs two different samples: parameters that
        # change what sample i is (not only its resolution) go into the id as a digest; defaults keep
        # the short ``shapes-<split>-<i>``.
        content = {"num_samples": (n, DEFAULT_SIZES[split]), "seed": (seed, 0), "distractors": (distractors, 1),
                   "noise": (noise, 0.03), "interaction": (interaction, 0),
                   "interaction_contrast": (interaction_contrast, 1.0), "interaction_flip": (interaction_flip, 0.0)}
        changed = sorted((k, repr(v)) for k, (v, default) in content.items() if v != default)
        self._id_prefix = f"shapes-{zlib.crc32(repr(changed).encode()):08x}" if changed else "shapes"
        self.split = split
        self.seed = seed
        self.image_size = image_size
        self.num_frames = frames
        self.sample_rate = sample_rate
        self.class_names = {
            "label": list(SHAPES), "shape": list(SHAPES), "color": list(COLORS), "size": list(SIZES),
            "direction": list(DIRECTIONS), "combo": [f"{c} {s}" for s in SHAPES for c in COLORS],
        }
        held = heldout_combos()
        all_combos = [(s, c) for s in range(len(SHAPES)) for c in range(len(COLORS))]
        self.seen_combos = [sc for sc in all_combos if sc not in held]
        self.unseen_combos = sorted(held)
        combos = np.array(self.unseen_combos if split == "zeroshot" else self.seen_combos)
        rng = np.random.default_rng([seed, zlib.crc32(split.encode())])
        self.interaction = int(interaction)
        if self.interaction:
            k = self.interaction
            cue_rng = np.random.default_rng([seed, zlib.crc32(split.encode()), 1])
            self._cue_image = cue_rng.integers(0, k, n)
            self._cue_text = cue_rng.integers(0, k, n)
            self._interaction = (self._cue_image + self._cue_text) % k
            flipped = cue_rng.random(n) < interaction_flip
            self._cue_text = np.where(flipped, cue_rng.integers(0, k, n), self._cue_text)
            self._brightness = (self._cue_image * (120.0 * interaction_contrast / (k - 1))).astype(np.float32)
            self.targets = [*type(self).targets, "interaction"]
            self.class_names["interaction"] = [f"interaction {i}" for i in range(k)]
        pick = rng.integers(0, len(combos), n)
        self._shape = combos[pick, 0].astype(np.int64)
        self._color = combos[pick, 1].astype(np.int64)
        self._size = rng.integers(0, len(SIZES), n)
        self._direction = rng.integers(0, len(DIRECTIONS), n)
        self._template = rng.integers(0, len(TEMPLATES_EN), n)
        self._images, self._videos = self._render(rng, n, image_size, frames, distractors, noise)
        self._audio = self._synth(rng, n, sample_rate, audio_seconds, noise)
        self._text = [self._caption(i, TEMPLATES_EN, SHAPES, COLORS, SIZES, DIRECTIONS) for i in range(n)]
        self._text_zh = [self._caption(i, TEMPLATES_ZH, SHAPES_ZH, COLORS_ZH, SIZES_ZH, DIRECTIONS_ZH)
                         for i in range(n)]

    # -- generation -------------------------------------------------------------------------

    def _render(self, rng: np.random.Generator, n: int, px: int, k: int, distractors: int,
                noise: float) -> tuple[np.ndarray, np.ndarray]:
        """Images ``[N, px, px, 3]`` and videos ``[N, K, px, px, 3]`` (uint8), in chunks to bound memory."""
        radius = (_RADIUS[self._size] * px).astype(np.float32)
        travel = px * 0.35  # total motion over the clip
        margin = radius + 1
        # Start position leaves room for the motion along the direction.
        d = _DIR_VEC[self._direction]
        lo = margin[:, None] + np.where(d < 0, travel, 0.0)
        hi = px - margin[:, None] - np.where(d > 0, travel, 0.0)
        start = (lo + rng.random((n, 2), dtype=np.float32) * np.maximum(hi - lo, 0.0)).astype(np.float32)
        t = np.linspace(0.0, 1.0, k, dtype=np.float32) if k > 1 else np.zeros(1, np.float32)
        # Frames 0..K-1 are the clip; frame K is the still image (the clip's middle position).
        t = np.concatenate([t, t[k // 2 : k // 2 + 1]])
        centres = start[:, None, :] + d[:, None, :] * travel * t[None, :, None]  # [N, K+1, 2]
        dots = rng.random((n, distractors, 2), dtype=np.float32) * (px - 4) + 2
        jitter = rng.normal(0, 12, (n, 3)).astype(np.float32)
        colour = np.clip(_RGB[self._color] + jitter, 0, 255).astype(np.uint8)  # [N, 3]
        # Background noise comes from a small bank of textures: drawing fresh
        # Gaussian noise for every pixel of every frame would dominate the cost.
        bank = np.clip(30.0 + rng.normal(0, noise * 255, (61, px, px, 3)), 0, 255).astype(np.uint8)
        texture = rng.integers(0, len(bank), (n, k + 1))
        coords = np.arange(px, dtype=np.float32) + 0.5
        out = np.empty((n, k + 1, px, px, 3), dtype=np.uint8)
        chunk = max(1, 4_000_000 // (px * px * (k + 1)))
        for a in range(0, n, chunk):
            b = min(n, a + chunk)
            canvas = bank[texture[a:b]]  # [m, K+1, px, px, 3]
            if self.interaction:  # the image cue: a brighter background, before anything is drawn on it
                lifted = canvas.astype(np.float32) + self._brightness[a:b, None, None, None, None]
                canvas = np.clip(lifted, 0, 255).astype(np.uint8)
            for j in range(distractors):
                ddx = coords[None, None, :] - dots[a:b, j, 0, None, None]
                ddy = coords[None, :, None] - dots[a:b, j, 1, None, None]
                dot = (ddx * ddx + ddy * ddy) <= (px * 0.05) ** 2  # [m, px, px]
                np.copyto(canvas, np.uint8(140), where=dot[:, None, :, :, None])
            dx = coords[None, None, None, :] - centres[a:b, :, 0, None, None]  # [m, K+1, 1, px]
            dy = coords[None, None, :, None] - centres[a:b, :, 1, None, None]  # [m, K+1, px, 1]
            r = radius[a:b, None, None, None]
            shp = self._shape[a:b]
            inside = np.empty(canvas.shape[:4], dtype=bool)
            for s in np.unique(shp):
                sel = np.nonzero(shp == s)[0]
                inside[sel] = _shape_mask(int(s), dx[sel], dy[sel], r[sel])
            np.copyto(canvas, colour[a:b, None, None, None, :], where=inside[..., None])
            out[a:b] = canvas
        return np.ascontiguousarray(out[:, k]), out[:, :k]

    def _synth(self, rng: np.random.Generator, n: int, sr: int, seconds: float, noise: float) -> np.ndarray:
        """Mono clips ``[N, L]`` float32."""
        length = max(1, int(sr * seconds))
        t = np.arange(length, dtype=np.float32) / sr
        f0 = _PITCH[self._color][:, None]
        glide = np.array([0.0, 0.0, 0.25, -0.2], dtype=np.float32)[self._direction][:, None]  # up/down glide
        vibr = np.array([0.0, 0.03, 0.0, 0.0], dtype=np.float32)[self._direction][:, None]   # "right" wobbles
        freq_t = f0 * (1.0 + glide * t / seconds + vibr * np.sin(2 * np.pi * 12 * t))
        phase = (2 * np.pi / sr) * np.cumsum(freq_t, axis=1, dtype=np.float32)
        decay = np.array([12.0, 6.0, 2.0], dtype=np.float32)[self._size][:, None]  # big = sustained
        env = np.exp(-decay * t[None]) * (np.minimum(1.0, t / 0.01) * 0.8)[None]
        out = np.empty((n, length), dtype=np.float32)
        for s in np.unique(self._shape):  # each waveform computed only for its own samples
            sel = np.nonzero(self._shape == s)[0]
            p = phase[sel]
            if s == 0:  # circle: pure tone
                w = np.sin(p)
            elif s == 1:  # square: square wave
                w = np.sign(np.sin(p)) * 0.6
            elif s == 2:  # triangle: triangle wave
                w = 4 * np.abs((p / (2 * np.pi)) % 1.0 - 0.5) - 1
            elif s == 3:  # diamond: sawtooth
                w = 2 * ((p / (2 * np.pi)) % 1.0) - 1
            else:  # cross: tone plus third harmonic
                w = np.sin(p) * 0.6 + 0.4 * np.sin(3 * p)
            out[sel] = w * env[sel]
        if noise > 0:
            bank = rng.normal(0, noise * 0.3, (61, length)).astype(np.float32)
            out += bank[rng.integers(0, len(bank), n)]
        return out.astype(np.float32)

    def _caption(self, i: int, templates: tuple[str, ...], shapes: tuple[str, ...], colors: tuple[str, ...],
                 sizes: tuple[str, ...], directions: tuple[str, ...]) -> str:
        text = templates[self._template[i]].format(
            shape=shapes[self._shape[i]], color=colors[self._color[i]],
            size=sizes[self._size[i]], direction=directions[self._direction[i]],
        )
        if self.interaction:
            text += f", marked {CUES[self._cue_text[i]]}" if templates is TEMPLATES_EN else f"，标记{CUES_ZH[self._cue_text[i]]}"
        return text

    # -- dataset protocol -------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._shape)

    def __getitem__(self, i: int) -> dict[str, Any]:
        if not -len(self) <= i < len(self):
            raise IndexError(f"shapes {self.split}: index {i} out of range for {len(self)} samples")
        i = int(i) % len(self)
        shape = int(self._shape[i])
        color = int(self._color[i])
        extra = {"interaction": int(self._interaction[i])} if self.interaction else {}
        return {
            **extra,
            "id": f"{self._id_prefix}-{self.split}-{i}",
            "image": self._images[i],
            "text": self._text[i],
            "text_zh": self._text_zh[i],
            "audio": AudioClip(self._audio[i][None], self.sample_rate),
            "video": self._videos[i],
            "label": shape,
            "shape": shape,
            "color": color,
            "size": int(self._size[i]),
            "direction": int(self._direction[i]),
            "combo": shape * len(COLORS) + color,
        }

    def texts(self, field: str) -> list[str]:
        """All captions of ``field`` (``text`` or ``text_zh``) without touching images."""
        if field == "text":
            return list(self._text)
        if field == "text_zh":
            return list(self._text_zh)
        raise DataError(f"dataset 'shapes' has no text field {field!r}; text fields: text, text_zh")

    def class_attributes(self, target: str) -> list[dict[str, str]]:
        """Per class of ``target`` (in ``class_names`` order), its named attributes, e.g. ``{"color": "red",
        "shape": "circle"}`` for a ``combo`` class: lets zero-shot prompts reorder words ("a circle that is red")."""
        if target in ("label", "shape"):
            return [{"shape": s} for s in SHAPES]
        if target == "combo":
            return [{"color": c, "shape": s} for s in SHAPES for c in COLORS]
        singular = {"color": COLORS, "size": SIZES, "direction": DIRECTIONS}
        if target in singular:
            return [{target: v} for v in singular[target]]
        raise DataError(f"dataset 'shapes': no class attributes for target {target!r}; targets: {', '.join(self.targets)}")

    def prompts(self, target: str = "label", language: str = "en") -> list[str]:
        """One caption-style prompt per class of ``target``, for zero-shot classification."""
        if target in ("label", "shape"):
            names = SHAPES if language == "en" else SHAPES_ZH
            return [f"a picture of a {n}" if language == "en" else f"一张{n}的图片" for n in names]
        if target == "color":
            names = COLORS if language == "en" else COLORS_ZH
            return [f"a picture of a {n} shape" if language == "en" else f"一张{n}图形的图片" for n in names]
        if target == "combo":
            if language == "en":
                return [f"a picture of a {c} {s}" for s in SHAPES for c in COLORS]
            return [f"一张{c}{s}的图片" for s in SHAPES_ZH for c in COLORS_ZH]
        raise DataError(f"dataset 'shapes': no prompts for target {target!r}; use label, shape, color or combo")
