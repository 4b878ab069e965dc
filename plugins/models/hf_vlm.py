"""A generative vision-language model from transformers (``AutoModelForImageTextToText``).

``[model] name = "hf-vlm"`` with ``params = { model = "<hub id or folder>" }``:
LLaVA, Qwen2-VL, Idefics3/SmolVLM, PaliGemma and any other architecture that
transformers ships under ``AutoModelForImageTextToText`` with an
``AutoProcessor`` that has a chat template.

* **Prompts**: each question becomes one user turn ``[image, text]`` passed
  through the processor's chat template, so every architecture gets its
  image placeholder where it expects it (LLaVA's ``<image>``, Qwen2-VL's
  ``<|vision_start|><|image_pad|><|vision_end|>`` ...).
* **Batching**: prompts are left-padded (the tokenizer's padding side is set
  here), so generated tokens start at the same column for every row, and
  greedy decoding of a batch equals decoding each sample alone.
* **Decoding**: greedy (``num_beams = 1``) or beam search, ``max_new_tokens``.
* **Size**: ``dtype`` (float32/bfloat16/float16) and ``device_map`` (needs
  ``accelerate``; ``"auto"`` spreads a checkpoint over every visible GPU and
  then CPU memory). See docs/vlm.md for memory per model size.
* **Safety**: loading is offline by default (``local_files_only``) and never
  runs code from the checkpoint unless ``trust_remote_code = true``.

Images come from the image field as float tensors ``[B, 3, H, W]`` in
[0, 1] (set ``[data.preprocess.image] mean = [0, 0, 0], std = [1, 1, 1]``):
the processor then resizes and normalises them as the checkpoint expects,
so corruptions and pixel attacks act before that normalisation.

Capabilities: ``answer`` (``answer(batch) -> list[str]``, the question in the
text field), ``caption`` (``caption(batch)``, with ``caption_prompt``), and
multiple choice through :meth:`HFVLM.choose` by generated letter or by
likelihood. :meth:`HFVLM.answer_logprob` gives the log-likelihood of a given
answer, which robustness and interpretability axes differentiate or occlude.
:meth:`HFVLM.interpretation` maps the language model's attention from each
reply token onto the image tokens back to the image's patch grid (the
``interpretability.attention`` axis draws them over the image).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from polymodal.batch import Batch
from polymodal.errors import ConfigError, DataError, PolymodalError
from polymodal.model_api import ModelConfig
from polymodal.model_api import LossOutput, ModelContext, PolymodalModel
from polymodal_plugins.metrics.choice_scores import LETTERS, extract_choice
from polymodal_plugins.models.vlm_pixels import PixelPath

_TEXT_META_KEYS = ("text", "raw", "strings")
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class HFVLM(PolymodalModel):
    """transformers image-text-to-text behind the polymodal model interface (``answer``, ``caption``)."""

    def __init__(self, config: ModelConfig, ctx: ModelContext):
        super().__init__(config, ctx)
        from transformers import AutoModelForImageTextToText, AutoProcessor

        p = dict(config.params)  # names and types already checked against HFVLMParams by build_model
        if not isinstance(p.get("model"), str):
            raise ConfigError(f"{ctx.source}: model.params.model: hf-vlm needs a hub id or local folder (a string)")
        self.model_id: str = p["model"]
        self.image_field: str = p.get("image_field", "image")
        self.text_field: str = p.get("text_field", "text")
        self.caption_prompt: str = p.get("caption_prompt", "Describe the image in one sentence.")
        #: The reference captions the task axis scores captions against (coco-captions' target).
        self.caption_field: str = p.get("caption_field", "captions")
        self.choice_prompt: str = p.get("choice_prompt", "{question}\n{options}\n"
                                        "Answer with the option's letter from the given choices directly.")
        self.choice_mode: str = p.get("choice_mode", "generate")
        self.max_new_tokens = int(p.get("max_new_tokens", 32))
        self.num_beams = int(p.get("num_beams", 1))
        self.batch_size = int(p.get("batch_size", 8))
        dtype_name = p.get("dtype", "float32")
        if dtype_name not in DTYPES:
            raise ConfigError(f"{ctx.source}: model.params.dtype: expected one of {', '.join(DTYPES)}, got {dtype_name!r}")
        self.dtype = DTYPES[dtype_name]
        kwargs: dict[str, Any] = {"local_files_only": bool(p.get("local_files_only", True)),
                                  "trust_remote_code": bool(p.get("trust_remote_code", False))}
        if p.get("revision"):
            kwargs["revision"] = p["revision"]
        model_kwargs: dict[str, Any] = {"dtype": self.dtype}
        if p.get("device_map") is not None:
            try:
                import accelerate  # noqa: F401
            except ImportError:
                raise ConfigError(f"{ctx.source}: model.params.device_map needs the 'accelerate' package "
                                  "(pip install accelerate)") from None
            model_kwargs["device_map"] = p["device_map"]
        try:
            self.vlm = AutoModelForImageTextToText.from_pretrained(self.model_id, **kwargs, **model_kwargs)
            self.processor = AutoProcessor.from_pretrained(self.model_id, **kwargs)
        except (OSError, ValueError, KeyError) as exc:
            raise ConfigError(f"{ctx.source}: model.params.model: cannot load an image-text-to-text model from "
                              f"{self.model_id!r}: {str(exc).strip().splitlines()[0]}") from None
        self.vlm.eval()
        self.tokenizer = getattr(self.processor, "tokenizer", None)
        if self.tokenizer is None or getattr(self.processor, "chat_template", None) is None:
            raise ConfigError(f"{ctx.source}: model.params.model: {self.model_id!r} has no processor tokenizer "
                              "with a chat template; hf-vlm needs both")
        # decoder-only generation: pad on the left so every row's new tokens start in the same column
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        #: The processor's preprocessing in torch (gradients reach the pixels), or why there is none.
        self.pixels: PixelPath | str = self._pixel_path()
        #: (images, texts, generated token ids) of the last generation, which :meth:`interpretation` explains.
        self._last: tuple[list[Any], list[str], list[list[int]]] | None = None

    def _pixel_path(self) -> PixelPath | str:
        """The differentiable pixel path, checked once against the processor on a probe image."""
        image_processor = getattr(self.processor, "image_processor", None)
        if image_processor is None:
            return f"{type(self.processor).__name__} has no image_processor"
        return PixelPath.checked(image_processor)

    @property
    def differentiable_pixels(self) -> bool:
        """Whether gradients of :meth:`answer_loglik` reach the image tensors (see :mod:`.vlm_pixels`)."""
        return isinstance(self.pixels, PixelPath)

    @property
    def input_fields(self) -> tuple[str, ...]:
        return (self.image_field, self.text_field)

    @property
    def device(self) -> torch.device:
        return next(self.vlm.parameters()).device

    # -- prompts and inputs -------------------------------------------------------------------
    def prompt(self, text: str) -> str:
        """One user turn (an image, then ``text``) through the chat template, ready for the reply."""
        messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": text}]}]
        return self.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)

    def _inputs(self, images: Sequence[Any], prompts: Sequence[str]) -> dict[str, torch.Tensor]:
        images = [self._image(im) for im in images]
        tensors = bool(images) and all(isinstance(im, torch.Tensor) for im in images)
        extra = {"do_rescale": False} if tensors else {}
        pixels = None
        if tensors and isinstance(self.pixels, PixelPath):
            # resize and normalise in torch, so a pixel attack's gradient reaches ``images``; the
            # processor still places the image tokens (it sees the same, already resized, pixels)
            images = [self.pixels.resize(im) for im in images]
            pixels = self.pixels.values(images)
            images = [im.detach() for im in images]
            extra.update(do_resize=False, do_center_crop=False)  # resizing is not idempotent (pixel budgets)
        enc = self.processor(images=list(images), text=list(prompts), padding=True, return_tensors="pt", **extra)
        if pixels is not None:
            enc.update(pixels)
        out = {}
        for k, v in enc.items():
            if isinstance(v, torch.Tensor):
                v = v.to(self.device)
                if v.is_floating_point():
                    v = v.to(self.dtype)
            out[k] = v
        return out

    @staticmethod
    def _image(image: Any) -> Any:
        if isinstance(image, torch.Tensor):
            if image.dim() != 3 or image.shape[0] not in (1, 3):
                raise DataError(f"hf-vlm expects images [3, H, W] in [0, 1], got shape {tuple(image.shape)}")
            return image.expand(3, -1, -1).float().clamp(0, 1).cpu()  # clamp: a gradient of 0 outside [0, 1]
        return image

    # -- generation ---------------------------------------------------------------------------
    def generate_replies(self, images: Sequence[Any], texts: Sequence[str], *, max_new_tokens: int | None = None,
                         num_beams: int | None = None) -> list[str]:
        """The model's reply to each (image, text) pair: one chat turn each, batched with left padding."""
        if len(images) != len(texts):
            raise DataError(f"hf-vlm: {len(images)} images but {len(texts)} prompts")
        replies: list[str] = []
        reply_ids: list[list[int]] = []
        pad = self.tokenizer.pad_token_id
        specials = set(self.tokenizer.all_special_ids)
        for lo in range(0, len(texts), self.batch_size):
            inputs = self._inputs(images[lo:lo + self.batch_size], [self.prompt(t) for t in texts[lo:lo + self.batch_size]])
            with torch.no_grad():
                out = self.vlm.generate(**inputs, max_new_tokens=max_new_tokens or self.max_new_tokens,
                                        num_beams=num_beams or self.num_beams, do_sample=False, pad_token_id=pad)
            new = out[:, inputs["input_ids"].shape[1]:]
            replies.extend(t.strip() for t in self.tokenizer.batch_decode(new, skip_special_tokens=True))
            for row in new.tolist():  # the generated tokens up to the first special one (end of turn, padding)
                stop = next((i for i, t in enumerate(row) if t in specials), len(row))
                reply_ids.append(row[:stop])
        self._last = (list(images), list(texts), reply_ids)
        return replies

    # -- attention onto the image ---------------------------------------------------------------
    def interpretation(self) -> dict[str, Any]:
        """The last generation's attention from each reply token onto the image, per sample.

        ``attention[b]`` is ``[reply tokens, grid h, grid w]``: for the position
        that predicted each reply token, the language model's attention weights
        on the image tokens, averaged over layers and heads, laid out on the
        grid the image tokens come from (the vision tower's patch grid, or the
        merged-patch grid of ``image_grid_thw``). ``tokens[b]`` are the reply
        tokens as text, ``image_mass[b]`` the share of each token's
        attention that lands on the image at all, and ``image_box[b]`` the part
        of the image the grid covers (fractions top, left, bottom, right: less
        than the whole image after a centre crop). Computed on demand with one
        teacher-forced pass per sample (eager attention, which returns weights).
        """
        if self._last is None:
            return {}
        out: dict[str, Any] = {"attention": [], "token_ids": [], "tokens": [], "image_mass": [], "image_box": [],
                               "method": "language_model_attention"}
        for image, text, reply in zip(*self._last, strict=True):
            maps, ids, mass = self.reply_attention(image, text, reply)
            size = tuple(image.shape[-2:]) if isinstance(image, torch.Tensor) else image.size[::-1]
            out["image_box"].append(self.pixels.box(*size) if isinstance(self.pixels, PixelPath)
                                    else (0.0, 0.0, 1.0, 1.0))
            out["attention"].append(maps)
            out["token_ids"].append(ids)
            out["tokens"].append([self.tokenizer.decode([i]) for i in ids])
            out["image_mass"].append(mass)
        return out

    def reply_attention(self, image: Any, text: str, reply_ids: Sequence[int]) -> tuple[torch.Tensor, list[int], list[float]]:
        """``([reply tokens, gh, gw] weights, reply token ids, image share per token)`` of one sample.

        The reply is the generated token ids themselves (not its text tokenised
        again), appended to the prompt for one teacher-forced pass.
        """
        inputs = self._inputs([image], [self.prompt(text)])
        prompt_len = int(inputs["input_ids"].shape[1])
        reply = torch.tensor([list(reply_ids)], dtype=inputs["input_ids"].dtype, device=inputs["input_ids"].device)
        for key, value in list(inputs.items()):  # every per-token input grows by the reply: text tokens
            if key != "input_ids" and value.dim() == 2 and value.shape == (1, prompt_len) and not value.is_floating_point():
                fill = 1 if key == "attention_mask" else 0  # other per-token tensors (token types): 0 = text
                inputs[key] = torch.cat([value, torch.full_like(reply, fill, dtype=value.dtype)], 1)
        inputs["input_ids"] = torch.cat([inputs["input_ids"], reply], 1)
        ids = inputs["input_ids"][0]
        image_id = getattr(self.processor, "image_token_id", None)
        if image_id is None:
            image_id = self.tokenizer.convert_tokens_to_ids(getattr(self.processor, "image_token", None))
        where = (ids == image_id).nonzero().flatten()
        grid = self._token_grid(inputs, len(where))
        switch = getattr(self.vlm, "set_attn_implementation", None)  # transformers >= 4.48
        before = getattr(self.vlm.config, "_attn_implementation", None)
        if switch is not None:
            switch("eager")  # sdpa / flash kernels return no weights (older versions fall back by themselves)
        try:
            with torch.no_grad():
                attentions = self.vlm(**inputs, output_attentions=True).attentions
        finally:
            if switch is not None and before is not None:
                switch(before)
        att = torch.stack([a[0].float() for a in attentions]).mean((0, 1))  # [T, T]: over layers and heads
        queries = torch.arange(prompt_len - 1, ids.shape[0] - 1, device=att.device)  # each predicts the next token
        on_image = att[queries][:, where]  # [reply tokens, image tokens]
        mass = on_image.sum(1).tolist()
        if grid is None:
            return on_image.new_zeros((len(reply_ids), 0, 0)).cpu(), list(reply_ids), mass
        return on_image.reshape(len(reply_ids), *grid).cpu(), list(reply_ids), mass

    def _token_grid(self, inputs: dict[str, torch.Tensor], tokens: int) -> tuple[int, int] | None:
        """(rows, cols) of the image tokens: the merged ``image_grid_thw`` grid, else the vision tower's patches."""
        vision = getattr(self.vlm.config, "vision_config", None)
        if "image_grid_thw" in inputs:
            t, h, w = (int(v) for v in inputs["image_grid_thw"][0])
            merge = int(getattr(vision, "spatial_merge_size", 1) or 1)
            grid = (t * h // merge, w // merge)
        else:
            side = int(getattr(vision, "image_size", 0) or 0) // max(int(getattr(vision, "patch_size", 1) or 1), 1)
            grid = (side, side) if side * side == tokens else (math.isqrt(tokens), math.isqrt(tokens))
        return grid if grid[0] * grid[1] == tokens and tokens else None

    def answer_logprob(self, images: Sequence[Any], texts: Sequence[str], answers: Sequence[str],
                       *, grad: bool = False) -> torch.Tensor:
        """Summed log-probability of each ``answers[i]`` as the reply to (``images[i]``, ``texts[i]``), ``[B]``.

        One forward pass with the answer appended after the generation prompt
        (teacher forcing); only the answer's tokens count: those past the
        prompt's own token count, which assumes the prompt tokenises to a
        prefix of prompt + answer (true where a chat template's generation
        prompt ends in whitespace or punctuation, as they do). ``grad=True`` keeps
        the graph (image tensors that require grad get gradients).
        """
        prompts = [self.prompt(t) for t in texts]
        # the answer tokens are the suffix of prompt+answer (tokenised together, so merges match inference)
        pad_side = self.tokenizer.padding_side
        self.tokenizer.padding_side = "right"  # so each answer's tokens sit right after its prompt
        try:
            inputs = self._inputs(images, [p + a for p, a in zip(prompts, answers, strict=True)])
            plain = self._inputs(images, prompts)
        finally:
            self.tokenizer.padding_side = pad_side
        prompt_len = plain["attention_mask"].sum(1)
        full_len = inputs["attention_mask"].sum(1)
        with torch.set_grad_enabled(grad):
            logits = self.vlm(**inputs).logits.float()
        logp = torch.log_softmax(logits[:, :-1], dim=-1)
        target = inputs["input_ids"][:, 1:]
        tok_lp = logp.gather(-1, target.unsqueeze(-1)).squeeze(-1)
        pos = torch.arange(target.shape[1], device=target.device).unsqueeze(0) + 1
        keep = (pos >= prompt_len.unsqueeze(1)) & (pos < full_len.unsqueeze(1))
        return (tok_lp * keep).sum(1)

    # -- multiple choice ----------------------------------------------------------------------
    def choice_text(self, question: str, options: Sequence[str]) -> str:
        lines = "\n".join(f"{LETTERS[i]}. {o}" for i, o in enumerate(options))
        return self.choice_prompt.format(question=question, options=lines)

    def choose(self, images: Sequence[Any], questions: Sequence[str], options: Sequence[Sequence[str]],
               mode: str | None = None) -> tuple[list[int | None], list[str]]:
        """The chosen option per question (``None``: the reply named none) and the reply it came from.

        ``generate``: the model answers freely and the letter is extracted.
        ``likelihood``: the option whose ``"<letter>. <text>"`` reply is most likely; never fails.
        """
        mode = mode or self.choice_mode
        texts = [self.choice_text(q, o) for q, o in zip(questions, options, strict=True)]
        if mode == "generate":
            replies = self.generate_replies(images, texts)
            return [extract_choice(r, o) for r, o in zip(replies, options)], replies
        if mode != "likelihood":
            raise ConfigError(f"hf-vlm: choice mode must be 'generate' or 'likelihood', got {mode!r}")
        picked: list[int | None] = []
        replies = []
        for im, t, opts in zip(images, texts, options):
            cands = [f"{LETTERS[i]}. {o}" for i, o in enumerate(opts)]
            scores = self.answer_logprob([im] * len(cands), [t] * len(cands), cands)
            best = int(scores.argmax())
            picked.append(best)
            replies.append(cands[best])
        return picked, replies

    # -- the model interface ------------------------------------------------------------------
    def answer(self, batch: Batch) -> list[str]:
        """One reply per sample: the image field's image, the text field's question."""
        return self.generate_replies(self.images(batch), self.strings(batch, self.text_field))

    def answer_loglik(self, batch: Batch, replies: Sequence[str]) -> torch.Tensor:
        """Log-likelihood ``[B]`` of each reply to the batch's (image, question); what importance occludes.

        Differentiable in the image field's tensor when grad is enabled (the pixel attack's loss).
        """
        return self.answer_logprob(self.images(batch), self.strings(batch, self.text_field), replies,
                                   grad=torch.is_grad_enabled())

    def answer_choice(self, batch: Batch, options: Sequence[Sequence[str]]) -> tuple[list[int | None], list[str]]:
        """Multiple choice on a batch: the chosen index per sample (``None``: none named) and the replies."""
        return self.choose(self.images(batch), self.strings(batch, self.text_field), options)

    def choice_loglik(self, batch: Batch, options: Sequence[Sequence[str]], picks: Sequence[int]) -> torch.Tensor:
        """Log-likelihood ``[B]`` of the reply ``"<letter>. <option>"`` naming ``options[i][picks[i]]`` to the
        multiple-choice prompt; differentiable in the image tensor when grad is enabled (the pixel attack)."""
        texts = [self.choice_text(q, o) for q, o in zip(self.strings(batch, self.text_field), options, strict=True)]
        replies = [f"{LETTERS[k]}. {o[k]}" for k, o in zip(picks, options, strict=True)]
        return self.answer_logprob(self.images(batch), texts, replies, grad=torch.is_grad_enabled())

    def caption(self, batch: Batch, *, max_len: int | None = None, beam_size: int | None = None) -> list[str]:
        images = self.images(batch)
        return self.generate_replies(images, [self.caption_prompt] * len(images),
                                     max_new_tokens=max_len, num_beams=beam_size)

    def loss(self, batch: Batch) -> LossOutput:
        raise PolymodalError(f"hf-vlm {self.model_id!r} is evaluation-only here; fine-tune it with transformers")

    def images(self, batch: Batch) -> list[torch.Tensor]:
        if self.image_field not in batch.inputs:
            raise PolymodalError(f"hf-vlm: batch has no field {self.image_field!r} "
                                 f"(fields: {', '.join(sorted(batch.inputs))})")
        data = batch.inputs[self.image_field].data
        if data.dim() != 4:
            raise DataError(f"hf-vlm: field {self.image_field!r} must hold images [B, 3, H, W], got {tuple(data.shape)}")
        return list(data)

    def strings(self, batch: Batch, field: str) -> list[str]:
        mb = batch.inputs.get(field)
        for key in _TEXT_META_KEYS:
            value = mb.meta.get(key) if mb is not None else None
            if isinstance(value, (list, tuple)) and all(isinstance(s, str) for s in value):
                return list(value)
        raise DataError(f"hf-vlm needs the raw strings of field {field!r} in the batch meta "
                        f"(one of {', '.join(_TEXT_META_KEYS)})")
