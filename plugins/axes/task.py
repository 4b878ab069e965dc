"""``task``: the task metrics of whatever the model does.

* ``classify`` -> accuracy, top-K accuracy, F1 (macro) and balanced accuracy
  on the model's target; a model reading a field whose modality declares a
  ``task`` trait is reported under that task (frames: ``video``), otherwise
  ``classification``.
* ``caption`` -> coco-caption BLEU-1..4, ROUGE-L and CIDEr-D against the
  sample's reference caption(s), with caption examples (image, generated
  caption, references, per-image scores).
* ``answer`` -> on samples with ``answers`` (human answers, e.g. datasets
  ``vqa``): VQA accuracy exactly as the official VQAv2 evaluation, overall
  (with per-sample scores) and per answer type; on samples with ``options``
  and ``answer`` (dataset ``multiple-choice``): choice accuracy (per-sample
  scores), extraction failures and, when samples carry a ``group`` seen more
  than once (circular rotations), circular accuracy. The model provides
  ``answer(batch) -> list[str]`` and ``answer_choice(batch, options) ->
  (indices or None, replies)``.
* ``generate`` -> Inception Score, FID and KID between generated and real
  images in the feature space of ``feature_extractor``: ``auto`` (default)
  is the standard FID Inception (``fid-inception``: TF's 2015 graph with
  pytorch-fid's weights, resize and normalisation) when its weights are
  found offline, else ``cnn`` with a seeded initialisation; or name either,
  a weights file for the FID network, or any registered image encoder (such
  as ``timm``). Rows say which extractor made the number and whether it is
  comparable with published FIDs (``comparable_with_published``). The Inception Score needs class
  probabilities, so it is computed with ``is_classifier`` (a checkpoint
  folder of a classify-capable image model, or a model object); without one
  its row has no value and says why. CLIPScore is measured when
  ``clip_model`` (an embed-capable model, same forms) is given. Generated
  images are saved as artifacts.

The axis adapts to the model's capabilities (``requires_any``); the metric
math lives in the metrics plugins (caption scores, fidelity) and
torchmetrics (classification). Classification and transcription are sharded across ranks
(torchmetrics synchronises); captioning and generation, whose examples and
per-image scores need one ordered corpus, are measured by rank 0 alone.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

import attrs
import numpy as np
import torch
import torch.nn.functional as F

from polymodal.batch import Batch, ModalityBatch
from polymodal.errors import ConfigError
from polymodal.evaluation import AxisContext, EvalData, declared_direction
from polymodal.results import ResultRow
from polymodal.stats import consistent_per_sample
from polymodal_plugins.axes.named_metrics import build_named, figures as metric_figures
from polymodal_plugins.axes.params import as_list
from polymodal_plugins.axes.samples import (chunks, collate_field, field_traits, load_image, topk_hits, transcript_field,
                                            with_raw_texts)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@attrs.define
class TaskAxis:
    """Task metrics per capability (see module docs)."""

    requires: ClassVar[frozenset[str]] = frozenset()
    requires_any: ClassVar[frozenset[str]] = frozenset({"classify", "caption", "generate", "transcribe", "answer"})
    #: Metrics a suite may choose by name (``metrics``): a spec declaring ``classify`` is built with
    #: ``num_classes``/``top_k`` and updated with ``(scores, targets)``; one declaring ``caption`` is built
    #: without arguments and updated with ``(generated, references)``.
    metric_feeds: ClassVar[frozenset[str]] = frozenset({"classify", "caption"})

    split: str | None = None
    ks: list[int] = attrs.field(default=(5,), converter=as_list)
    batch_size: int = attrs.field(default=32, validator=attrs.validators.ge(1))
    # captioning
    max_len: int = attrs.field(default=20, validator=attrs.validators.ge(1))
    beam_size: int = attrs.field(default=1, validator=attrs.validators.ge(1))
    #: Field of the reference captions (default: the captioner's caption field); a list value = several references.
    references_field: str | None = None
    examples: int = attrs.field(default=4, validator=attrs.validators.ge(0))
    # generation
    #: ``auto``, ``fid-inception``, a FID weights file, or an image encoder name / ``{name, params}`` (module docs).
    feature_extractor: Any = "auto"
    clip_model: Any = None
    is_classifier: Any = None
    kid_subset_size: int = attrs.field(default=100, validator=attrs.validators.ge(2))
    is_splits: int = attrs.field(default=10, validator=attrs.validators.ge(1))
    # transcription
    #: Lower-case, drop punctuation and collapse whitespace before WER/CER (see metrics.error_rates).
    normalize: bool = True
    #: Metrics by registry name (``metrics = ["accuracy", "macro-f1"]``); each is fed by the path of the
    #: capability its spec declares (``classify``, ``caption``), so a metric another plugin ``replaces``
    #: is the one used. None: the default figures of each capability.
    metrics: list[str] | None = attrs.field(default=None, converter=attrs.converters.optional(as_list))

    def _named(self, ctx: AxisContext, capability: str, **params: Any) -> list[tuple[str, Any]] | None:
        """The suite's metrics that score ``capability``, built through the registry; None: use the defaults."""
        return build_named(ctx, self.metrics, capability, **params)

    def run(self, model: Any, data: EvalData, ctx: AxisContext) -> Iterator[ResultRow]:
        caps = set(getattr(model, "capabilities", ()))
        if not caps & self.requires_any:
            raise ConfigError(f"axis task: model {type(model).__name__} has none of the capabilities "
                              f"{', '.join(sorted(self.requires_any))}")
        split = self.split or ctx.split
        if "classify" in caps:
            yield from self._classification(model, data, ctx, split)
        # Corpus scores and their examples: rank 0 measures the whole split alone; ``local`` keeps the
        # metrics' syncs (FID's feature states) on this rank instead of waiting for ranks that left.
        if "caption" in caps and ctx.rank == 0:
            with ctx.local():
                yield from self._captioning(model, data, ctx, split)
        if "generate" in caps and ctx.rank == 0:
            with ctx.local():
                yield from self._generation(model, data, ctx, split)
        if "transcribe" in caps:
            yield from self._transcription(model, data, ctx, split)
        if "answer" in caps:
            yield from self._answering(model, data, ctx, split)

    # -- visual question answering / multiple choice ---------------------------------------------
    def _answering(self, model: Any, data: EvalData, ctx: AxisContext, split: str) -> Iterator[ResultRow]:
        from polymodal_plugins.metrics.choice_scores import choice_summary
        from polymodal_plugins.metrics.vqa_scores import summarize, vqa_accuracy

        vqa: dict[str, list] = {"ids": [], "scores": [], "types": []}
        mc: dict[str, list] = {"ids": [], "picked": [], "answers": [], "groups": []}
        shown = 0
        with torch.no_grad():
            for chunk in chunks(data, ctx, split, self.batch_size, what="task: answering"):
                kinds = {"choice" if "options" in s and "answer" in s else "vqa" if "answers" in s else None
                         for s in chunk.samples}
                if None in kinds or len(kinds) != 1:
                    raise ConfigError("axis task: answering needs every sample to carry either 'answers' (human "
                                      "answers) or 'options' and 'answer' (multiple choice), not a mix")
                batch = with_raw_texts(data, chunk)
                if kinds == {"vqa"}:
                    replies = model.answer(batch)
                    for s, r in zip(chunk.samples, replies, strict=True):
                        vqa["ids"].append(s.get("id"))
                        vqa["scores"].append(vqa_accuracy(r, [str(a) for a in s["answers"]]))
                        vqa["types"].append(str(s.get("answer_type", "all")))
                else:
                    picked, replies = model.answer_choice(batch, [list(s["options"]) for s in chunk.samples])
                    for s, p in zip(chunk.samples, picked, strict=True):
                        mc["ids"].append(s.get("id"))
                        mc["picked"].append(p)
                        mc["answers"].append(int(s["answer"]))
                        mc["groups"].append(s.get("group", s.get("id")))
                for s, r in zip(chunk.samples, replies):
                    if shown < self.examples:
                        question = s.get(getattr(model, "text_field", None) or "")
                        ctx.artifact("answer_example", {"id": str(s.get("id")), "question": question,
                                                        "reply": r})
                        shown += 1
        # every rank joins the gathers, whatever its shard held
        vqa = {k: ctx.gather_cat(v) for k, v in vqa.items()}
        mc = {k: ctx.gather_cat(v) for k, v in mc.items()}
        if vqa["scores"]:
            summary = summarize(vqa["scores"], vqa["types"])
            extra = {"samples": len(vqa["scores"]), "per_answer_type": summary["per_answer_type"],
                     "definition": "official VQAv2 accuracy: leave-one-human-out min(#match/3, 1)"}
            yield ctx.row("vqa_accuracy", summary["overall"], extra=extra, task="visual-question-answering",
                          per_sample=vqa["scores"], sample_ids=vqa["ids"], higher_is_better=True)
            for answer_type, value in summary["per_answer_type"].items():
                yield ctx.row(f"vqa_accuracy/{answer_type}", value, extra={"answer_type": answer_type},
                              task="visual-question-answering", higher_is_better=True)
        if mc["picked"]:
            summary = choice_summary(mc["picked"], mc["answers"], mc["groups"])
            correct = [float(p is not None and p == a) for p, a in zip(mc["picked"], mc["answers"])]
            extra = {"samples": summary["num_questions"], "extraction_failures": summary["extraction_failures"]}
            yield ctx.row("choice_accuracy", summary["accuracy"], extra=extra, task="multiple-choice",
                          per_sample=correct, sample_ids=mc["ids"], higher_is_better=True)
            yield ctx.row("extraction_failure_rate", summary["extraction_failure_rate"],
                          extra={"extraction_failures": summary["extraction_failures"]},
                          task="multiple-choice", higher_is_better=False)
            if summary["num_circular_groups"] < summary["num_questions"]:
                yield ctx.row("circular_accuracy", summary["circular_accuracy"],
                              extra={"groups": summary["num_circular_groups"]}, task="multiple-choice",
                              higher_is_better=True)

    # -- speech recognition -----------------------------------------------------------------------
    def _transcription(self, model: Any, data: EvalData, ctx: AxisContext, split: str) -> Iterator[ResultRow]:
        ref_field = transcript_field(model, self.references_field)
        wer = ctx.plugins.build("metrics", "wer", normalize=self.normalize)
        cer = ctx.plugins.build("metrics", "cer", normalize=self.normalize)
        shown = 0
        with torch.no_grad():
            for chunk in chunks(data, ctx, split, self.batch_size, what="task: transcription"):
                hyps = model.transcribe(chunk.batch)
                refs = []
                for s in chunk.samples:
                    value = s.get(ref_field)
                    if not isinstance(value, str):
                        raise ConfigError(f"axis task: sample {s.get('id')!r} has no reference transcript "
                                          f"field {ref_field!r} (a string)")
                    refs.append(value)
                if len(hyps) != len(refs):
                    raise ConfigError(f"axis task: model {type(model).__name__}.transcribe returned {len(hyps)} "
                                      f"transcripts for {len(refs)} samples")
                wer.update(hyps, refs)
                cer.update(hyps, refs)
                for s, h, r in zip(chunk.samples, hyps, refs):
                    if shown < self.examples:
                        ctx.artifact("transcript_example", {"id": str(s.get("id")), "reference": r, "transcript": h})
                        shown += 1
        # compute() synchronises across ranks: every rank reaches it, whatever its shard held.
        w, c = float(wer.compute()), float(cer.compute())
        extra = {"references_field": ref_field, "normalized": self.normalize,
                 "definition": "corpus-level edit distance / reference length, equal to jiwer"}
        yield ctx.row("wer", w, extra=extra, task="speech-recognition", higher_is_better=declared_direction(wer))
        yield ctx.row("cer", c, extra=extra, task="speech-recognition", higher_is_better=declared_direction(cer))

    # -- classification / video understanding -------------------------------------------
    def _classification(self, model: Any, data: EvalData, ctx: AxisContext, split: str) -> Iterator[ResultRow]:
        target = model.config.target
        outputs = []
        top_k = tuple(sorted({1, *self.ks}))
        hits: dict[int, list[float]] = {k: [] for k in top_k}  # per-sample top-k correctness, split order
        ids: list[Any] = []
        with torch.no_grad():
            for chunk in chunks(data, ctx, split, self.batch_size, what="task: classification"):
                logits, y = model.predict(chunk.batch).float().cpu(), chunk.batch.targets[target].long().cpu()
                outputs.append((logits, y))
                for k, v in topk_hits(logits, y, top_k).items():
                    hits[k] += v
                ids += list(chunk.indices)
        # A rank with an empty shard (fewer samples than ranks) learns the class count from the others
        # and still takes part in the metric's sync and the gathers; when no rank has a sample, all return together.
        num_classes = int(ctx.all_reduce_max(float(outputs[0][0].shape[1]) if outputs else 0.0))
        hits, ids = _joined(ctx.all_gather_object((hits, ids)), top_k)
        if not num_classes:
            return
        named = self._named(ctx, "classify", num_classes=num_classes, top_k=top_k)
        directions: dict[str, bool | None] = {}
        if named is None:
            report = ctx.plugins.build("metrics", "classification", num_classes=num_classes, top_k=top_k)
            for logits, y in outputs:
                report.update(logits, y)
            out = report.compute()
            figures = {"accuracy": float(out["accuracy"]), "f1_macro": float(out["macro_f1"]),
                       "balanced_accuracy": float(out["balanced_accuracy"])}
            figures.update({f"top{k}_accuracy": float(out[f"accuracy_top{k}"]) for k in report.top_k if k > 1})
            directions = dict.fromkeys(figures, declared_direction(report))
            samples = int(out["confusion_matrix"].sum())
        else:
            figures = {}
            for name, metric in named:
                for logits, y in outputs:
                    metric.update(logits, y)
                got = metric_figures(metric.compute(), name)
                figures.update(got)
                directions.update(dict.fromkeys(got, declared_direction(metric)))
            samples = len(ids)
        fields = list(model.input_fields)
        # A modality may name the task that classifying it is (frames: video understanding).
        task = next((t for t in (field_traits(data, f).task for f in fields) if t), "classification")
        extra = {"samples": samples, "target": target, "fields": fields}
        per_sample = {"accuracy": hits[1], **{f"top{k}_accuracy": hits[k] for k in top_k if k > 1}}
        for name, value in figures.items():
            scores = consistent_per_sample(per_sample.get(name), value)
            yield ctx.row(name, value, extra=extra, task=task, per_sample=scores or None,
                          sample_ids=ids if scores else None, higher_is_better=directions.get(name))

    # -- captioning ---------------------------------------------------------------------------
    def _captioning(self, model: Any, data: EvalData, ctx: AxisContext, split: str) -> Iterator[ResultRow]:
        ref_field = self.references_field or getattr(model, "caption_field", None)
        image_field = getattr(model, "image_field", None)
        if ref_field is None:
            raise ConfigError("axis task: references_field: the captioning model names no caption field; set it")
        scores = ctx.plugins.build("metrics", "caption-scores")  # by name: a plugin's replacement is used
        named = self._named(ctx, "caption")
        shown: list[tuple[Any, str, list[str]]] = []
        with torch.no_grad():
            for chunk in chunks(data, ctx, split, self.batch_size, what="task: captioning", sharded=False):
                if (self.references_field is None and chunk.samples and ref_field not in chunk.samples[0]
                        and len(set(getattr(model, "capabilities", ())) & self.requires_any) > 1):
                    # a model that also does something else (hf-vlm answers questions) on data without
                    # references: measure what the data supports and say why captioning has no rows
                    import warnings

                    warnings.warn(f"axis task: split {split!r} has no reference captions {ref_field!r}; "
                                  "captioning not scored (set references_field to require it)", stacklevel=2)
                    return
                generated = model.caption(chunk.batch, max_len=self.max_len, beam_size=self.beam_size)
                refs = []
                for s in chunk.samples:
                    value = s.get(ref_field)
                    if value is None:
                        raise ConfigError(f"axis task: sample {s.get('id')!r} has no reference caption "
                                          f"field {ref_field!r}")
                    refs.append([str(v) for v in value] if isinstance(value, (list, tuple)) else [str(value)])
                scores.update(generated, refs)
                for _name, metric in named or ():
                    metric.update(generated, refs)
                for s, g, r in zip(chunk.samples, generated, refs, strict=True):
                    if len(shown) < self.examples:
                        shown.append((s.get(image_field) if image_field else None, g, r))
        if not scores.corpus()[0]:
            return
        summary, per_image = scores.compute_per_image()
        extra = {"samples": len(per_image), "beam_size": self.beam_size, "references_field": ref_field}
        if named is None:
            for name, value in summary.items():
                yield ctx.row(name, value, extra=extra, task="captioning", higher_is_better=declared_direction(scores))
        for name, metric in named or ():
            for figure, value in metric_figures(metric.compute(), name).items():
                yield ctx.row(figure, value, extra=extra, task="captioning", higher_is_better=declared_direction(metric))
        for i, (raw, gen, refs) in enumerate(shown):
            image = load_image(data, image_field, raw) if image_field else None
            ctx.artifact("caption_example", {"generated": gen, "references": refs, "scores": per_image[i]},
                         image=image, name="caption")

    # -- text-to-image ----------------------------------------------------------------------------
    def _extractor(self, ctx: AxisContext) -> tuple[Any, str, bool]:
        """(features of [B, 3, H, W] images in [0, 1], description, comparable with published FIDs)."""
        from polymodal_plugins.metrics.fid_inception import available_offline, fid_inception, is_fid_inception

        spec = self.feature_extractor
        if spec == "auto":
            spec = "fid-inception" if available_offline() else "cnn"
        if isinstance(spec, str) and (is_fid_inception(spec) or spec.endswith((".pth", ".pt", ".safetensors"))):
            net = fid_inception(None if is_fid_inception(spec) else spec).to(ctx.device)
            return net, f"fid-inception (weights: {net.weights_source})", True
        encoder, name = self._encoder(ctx, spec)
        mean = torch.tensor(IMAGENET_MEAN, device=ctx.device)[:, None, None]
        std = torch.tensor(IMAGENET_STD, device=ctx.device)[:, None, None]

        def features(images: torch.Tensor) -> torch.Tensor:
            x = (images.float().clamp(0, 1) - mean) / std
            mask = torch.ones(x.shape[0], dtype=torch.bool, device=x.device)
            return encoder(ModalityBatch(x, mask)).pooled()

        return features, f"encoder {name!r} (not comparable with published FIDs)", False

    def _encoder(self, ctx: AxisContext, spec: Any) -> tuple[torch.nn.Module, str]:
        name, params = (spec, {}) if isinstance(spec, str) else (spec.get("name"), dict(spec.get("params", {})))
        if not isinstance(name, str):
            raise ConfigError(f"axis task: feature_extractor must be an encoder name or {{name, params}}, got {spec!r}")
        torch.manual_seed(ctx.seed)  # a randomly initialised extractor must be the same for every run
        try:
            encoder = ctx.plugins.build("encoders", name, **params)
        except TypeError as exc:
            raise ConfigError(f"axis task: feature_extractor {name!r}: {exc}") from None
        return encoder.to(ctx.device).eval(), name

    def _generation(self, model: Any, data: EvalData, ctx: AxisContext, split: str) -> Iterator[ResultRow]:
        extractor, ext_name, comparable = self._extractor(ctx)

        def features(images: torch.Tensor) -> torch.Tensor:
            return extractor(images.float().clamp(0, 1))

        image_field = getattr(model, "image_field", None)
        text_field = getattr(model, "text_field", None)
        # Built by name through the registry, so a metric another plugin ``replaces`` is the one used.
        fid = ctx.plugins.build("metrics", "fid")
        kid = ctx.plugins.build("metrics", "kid", subset_size=self.kid_subset_size)
        inception = ctx.plugins.build("metrics", "inception-score", splits=self.is_splits)
        clip = self._load(ctx, self.clip_model, "clip_model", "embed")
        classifier = self._load(ctx, self.is_classifier, "is_classifier", "classify")
        clip_metric = ctx.plugins.build("metrics", "clipscore") if clip is not None else None
        shown = 0
        with torch.no_grad():
            for chunk in chunks(data, ctx, split, self.batch_size, what="task: generation", sharded=False):
                gen = model.generate(chunk.batch).float().clamp(0, 1)
                real = [load_image(data, image_field, s.get(image_field)) for s in chunk.samples] if image_field else []
                if not real or any(r is None for r in real):
                    raise ConfigError(f"axis task: generation needs real images in field {image_field!r} of "
                                      f"split {split!r} for FID/KID")
                real_t = torch.stack([torch.from_numpy(r).permute(2, 0, 1) for r in real]).float().div(255)
                real_t = F.interpolate(real_t.to(ctx.device), size=gen.shape[-2:], mode="bilinear",
                                       align_corners=False, antialias=True)
                gf, rf = features(gen), features(real_t)
                fid.update(rf, real=True)
                fid.update(gf, real=False)
                kid.update(rf, real=True)
                kid.update(gf, real=False)
                if classifier is not None:
                    inception.update(self._classify(classifier, data, gen, ctx))
                texts = [str(s.get(text_field, "")) for s in chunk.samples]
                if clip is not None:
                    ei, et = self._clip_embed(clip, data, gen, texts, ctx)
                    clip_metric.update(image_embeddings=ei.cpu(), text_embeddings=et.cpu())
                for i in range(len(chunk.samples)):
                    if shown >= self.examples:
                        break
                    img = (gen[i].permute(1, 2, 0).cpu().numpy() * 255).round().astype(np.uint8)
                    if img.shape[-1] == 1:
                        img = np.repeat(img, 3, -1)
                    ctx.artifact("generated_image", {"caption": texts[i], "id": str(chunk.batch.ids[i])},
                                 image=img, name="generated")
                    shown += 1
        n = len(fid.generated_features) and int(sum(len(t) for t in fid.generated_features))
        if not n:
            return
        if n < 2:
            raise ConfigError("axis task: FID/KID need at least 2 generated samples; raise --limit")
        kid.options["subset_size"] = min(self.kid_subset_size, n)
        inception.splits = min(self.is_splits, n)
        dim = int(fid.generated_features[0].shape[1])
        # FID's covariance has rank < feature dim below that many samples: the figure is then unstable.
        extra = {"samples": n, "feature_extractor": ext_name, "comparable_with_published": comparable,
                 "feature_dim": dim, "reliable": n > dim}
        yield ctx.row("fid", float(fid.compute()), extra=extra, task="text-to-image",
                      higher_is_better=declared_direction(fid))
        k = kid.compute()
        yield ctx.row("kid", float(k["kid_mean"]), extra={**extra, "kid_std": float(k["kid_std"])}, task="text-to-image",
                      higher_is_better=declared_direction(kid))
        if classifier is not None:
            s = inception.compute()
            yield ctx.row("inception_score", float(s["is_mean"]), extra={**extra, "is_std": float(s["is_std"])},
                          task="text-to-image", higher_is_better=declared_direction(inception))
        else:
            yield ctx.row("inception_score", None, extra={**extra, "reason": "no is_classifier given: the Inception "
                          "Score needs a classifier's class probabilities"}, task="text-to-image",
                          higher_is_better=declared_direction(inception))
        if clip_metric is not None:
            yield ctx.row("clip_score", float(clip_metric.compute()),
                          extra={"samples": n, "definition": "2.5 * max(cos(image, text), 0) (Hessel et al.)"},
                          task="text-to-image", higher_is_better=declared_direction(clip_metric))

    def _load(self, ctx: AxisContext, spec: Any, key: str, capability: str) -> Any:
        """A helper model given as a checkpoint folder or an object, checked for ``capability``."""
        if spec is None:
            return None
        if isinstance(spec, str) or hasattr(spec, "__fspath__"):
            from polymodal.model_api import load_model

            model = load_model(spec, ctx.plugins)
        else:
            model = spec
        if capability not in getattr(model, "capabilities", ()):
            raise ConfigError(f"axis task: {key}: model {spec!r} lacks the {capability!r} capability")
        return model.to(ctx.device).eval()

    def _classify(self, classifier: Any, data: EvalData, images: torch.Tensor, ctx: AxisContext) -> torch.Tensor:
        """Class logits of generated images, preprocessed like the dataset's images."""
        field = next((f for f in classifier.input_fields if field_traits(data, f).pictorial), None)
        if field is None:
            raise ConfigError(f"axis task: is_classifier must read a pictorial field (images) of this dataset "
                              f"(it reads: {', '.join(classifier.input_fields)})")
        uint8 = [(im.permute(1, 2, 0).cpu().numpy() * 255).round().astype(np.uint8) for im in images]
        return classifier.predict(Batch({field: collate_field(data, field, uint8, ctx.device)}, {}, [])).float()

    def _clip_embed(self, clip: Any, data: EvalData, images: torch.Tensor, texts: list[str],
                    ctx: AxisContext) -> tuple[torch.Tensor, torch.Tensor]:
        """Paired image/text embeddings: raw-input embedding when the model offers it, else via the data's fields."""
        if hasattr(clip, "embed_images") and hasattr(clip, "embed_texts"):
            ei, et = clip.embed_images(images), clip.embed_texts(texts)
        else:
            fields = list(clip.embed_fields)
            img_f = next((f for f in fields if field_traits(data, f).pictorial), None)
            txt_f = next((f for f in fields if field_traits(data, f).textual), None)
            if img_f is None or txt_f is None:
                raise ConfigError(f"axis task: clip_model must embed an image and a text field of this dataset "
                                  f"(it embeds: {', '.join(fields)})")
            uint8 = [(im.permute(1, 2, 0).cpu().numpy() * 255).round().astype(np.uint8) for im in images]
            ei = clip.embed(Batch({img_f: collate_field(data, img_f, uint8, ctx.device)}, {}, []), img_f)
            et = clip.embed(Batch({txt_f: collate_field(data, txt_f, texts, ctx.device)}, {}, []), txt_f)
        return ei.float(), et.float()


def _joined(parts: list[Any], top_k: tuple[int, ...]) -> tuple[dict[int, list[float]], list[Any]]:
    """Every rank's per-sample hits and ids (one gather), joined in rank order = split order."""
    hits = {k: [x for part, _ in parts for x in part[k]] for k in top_k}
    return hits, [i for _, part in parts for i in part]
