"""Raw samples and batches for axes: splits, limited/sharded chunks, ablations.

Axes read raw samples (not only collated batches) because several need the
original values next to the model's input: captions as references, images
for heatmaps and artifacts, texts for retrieval examples. Everything here
respects ``ctx.limit`` (``--limit``) and ``ctx.shard`` (one part per rank).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from itertools import islice
from typing import Any

import attrs
import numpy as np
import torch

from polymodal.batch import Batch, ModalityBatch
from polymodal.errors import ConfigError, DataError
from polymodal.evaluation import AxisContext, EvalData, clean_batch
from polymodal.streaming import is_streamed, iter_samples, limit_dataset
from polymodal.traits import ModalityTraits, traits_of


@attrs.frozen
class Chunk:
    """One evaluation batch with the raw samples it was collated from."""

    indices: list[int]
    samples: list[dict[str, Any]]
    batch: Batch


def split_dataset(data: EvalData, split: str, axis: str) -> Any:
    """The dataset of ``split``; a split not loaded for training is built from the data config.

    The zero-shot split of ``shapes`` is never used for training, so the
    training data does not load it; it is built here with the same dataset
    parameters so that its samples look exactly like the others.
    """
    if split in data.splits:
        return data.splits[split]
    cfg = getattr(data, "cfg", None)
    plugins = getattr(data, "plugins", None)
    if cfg is not None:
        from polymodal import get_plugins

        plugins = plugins or get_plugins()
        kwargs = dict(cfg.params)
        if cfg.root is not None:
            kwargs["root"] = cfg.root
        try:
            ds = plugins.build("datasets", cfg.dataset, split=split, **kwargs)
        except DataError as exc:
            raise ConfigError(f"axis {axis!r}: split {split!r}: {exc}") from None
        if cfg.limit:
            ds = limit_dataset(ds, cfg.limit)
        data.splits[split] = ds
        return ds
    raise ConfigError(f"axis {axis!r}: no split {split!r} in the evaluation data (have: {', '.join(data.splits)})")


def base_dataset(ds: Any) -> Any:
    """The underlying dataset of a (possibly nested) ``Subset``, for ``class_names`` etc."""
    # A StreamLimit passes its dataset's facts through, so it need not be unwrapped.
    while hasattr(ds, "dataset") and hasattr(ds, "indices"):
        ds = ds.dataset
    return ds


def chunks(data: EvalData, ctx: AxisContext, split: str, batch_size: int = 32, *,
           what: str = "", limit: int | None = None, sharded: bool = True) -> Iterator[Chunk]:
    """This rank's samples of ``split`` (at most ``ctx.limit``/``limit``) in batches on ``ctx.device``.

    ``sharded=False`` gives every rank all samples, for measurements whose
    value depends on the whole set at once (retrieval ranks every candidate).
    The batches come from the run's shared clean batches (:func:`polymodal.evaluation.clean_batch`):
    preprocessed once, whichever axis asks first.
    """
    ds = split_dataset(data, split, ctx.axis)
    n = ctx.limited(len(ds))
    if limit is not None:
        n = min(n, limit)
    mine = ctx.shard(n) if sharded else range(n)
    # A streamed dataset is read once, front to back; a map-style one by index, and only for batches
    # no axis of this run has built yet.
    stream = iter_samples(ds, mine) if is_streamed(ds) else None
    done = 0
    for start in range(0, len(mine), batch_size):
        idx = list(mine[start:start + batch_size])
        read = None if stream is None else list(islice(stream, len(idx)))
        samples, batch = clean_batch(data, split, idx, ds, samples=read)
        yield Chunk(idx, samples, batch.to(ctx.device))
        done += len(idx)
        ctx.progress(done, len(mine), what or f"{ctx.axis} {split}")


def field_modality(data: EvalData, field: str) -> str:
    """The modality kind (``image``, ``text``, ...) of an input field, from the collate function."""
    modality = getattr(data.collate, "modalities", {}).get(field)
    return str(getattr(modality, "name", "")) if modality is not None else ""


def field_traits(data: EvalData, field: str) -> ModalityTraits:
    """The declared traits of an input field's modality (axes decide from these, never from names)."""
    return traits_of(getattr(data.collate, "modalities", {}).get(field))


def field_object(data: EvalData, field: str) -> Any:
    """The modality object configured for ``field`` (None when the field has none)."""
    return getattr(data.collate, "modalities", {}).get(field)


def collate_field(data: EvalData, field: str, values: Sequence[Any], device: torch.device) -> ModalityBatch:
    """Preprocess raw ``values`` of ``field`` exactly as the data pipeline does (e.g. prompt texts)."""
    modality = getattr(data.collate, "modalities", {}).get(field)
    if modality is None:
        raise ConfigError(f"no modality is configured for field {field!r} (fields: "
                          f"{', '.join(getattr(data.collate, 'modalities', {}))})")
    root = getattr(data.collate, "root", None)
    return modality.collate([modality.preprocess(modality.load(v, root)) for v in values]).to(device)


def field_batch(data: EvalData, field: str, values: Sequence[Any], device: torch.device) -> Batch:
    """A batch holding only ``field`` built from raw values (no targets); a textual field keeps its strings
    (``meta[RAW_STRINGS]``) for models that tokenise themselves."""
    batch = Batch({field: collate_field(data, field, values, device)}, {}, list(range(len(values))))
    return with_raw_texts(data, samples=[{field: v} for v in values], batch=batch)


def without(batch: Batch, fields: Iterable[str]) -> Batch:
    """``batch`` with ``fields`` missing for every sample: an all-false mask, data untouched.

    Fusions and encoders are mask-exact, so this is the platform's meaning
    of "this modality is absent" (the same as a sample that lacks it).
    """
    drop = set(fields)
    inputs = {f: (ModalityBatch(mb.data, torch.zeros_like(mb.mask), mb.meta) if f in drop else mb)
              for f, mb in batch.inputs.items()}
    return Batch(inputs, batch.targets, batch.ids)


def image_uint8(value: Any) -> np.ndarray | None:
    """A raw image sample value as ``H x W x 3`` uint8, or None when it is not an in-memory image."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    if hasattr(value, "convert"):  # PIL
        return np.asarray(value.convert("RGB"))
    if not isinstance(value, np.ndarray):
        return None
    arr = value
    if arr.ndim == 3 and arr.shape[0] in (1, 3) and arr.shape[-1] not in (1, 3):
        arr = arr.transpose(1, 2, 0)
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3:
        return None
    if arr.shape[-1] == 1:
        arr = np.repeat(arr, 3, axis=-1)
    if arr.dtype != np.uint8:
        arr = np.clip(arr * (255.0 if arr.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(arr[..., :3])


def load_image(data: EvalData, field: str, value: Any) -> np.ndarray | None:
    """The sample's image as uint8 array, loading a file through the field's modality if needed."""
    arr = image_uint8(value)
    if arr is not None:
        return arr
    modality = getattr(data.collate, "modalities", {}).get(field)
    if modality is None:
        return None
    try:
        return image_uint8(modality.load(value, getattr(data.collate, "root", None)))
    except Exception:  # noqa: BLE001 - an artifact is optional; the metric rows do not depend on it
        return None


def topk_hits(logits: torch.Tensor, y: torch.Tensor, ks: Any) -> dict[int, list[float]]:
    """Per-sample top-K correctness (1.0 / 0.0) for each K, with the selections torchmetrics makes.

    Top-1 is ``argmax`` and top-K ``topk``, as in torchmetrics' multiclass
    accuracy, so the mean of each list equals its accuracy figure.
    """
    out: dict[int, list[float]] = {}
    for k in sorted(set(ks)):
        if k == 1:
            out[k] = (logits.argmax(dim=1) == y).float().tolist()
        else:
            ranked = logits.topk(min(k, logits.shape[1]), dim=1).indices
            out[k] = (ranked == y[:, None]).any(dim=1).float().tolist()
    return out


def transcript_field(model: Any, override: str | None = None) -> str:
    """The field holding a transcriber's reference transcripts: the axis's setting, else the model's fact.

    A ``transcribe`` model declares ``text_field`` (the field its transcripts
    are read from); axes never assume a field name.
    """
    field = override or getattr(model, "text_field", None)
    if not isinstance(field, str) or not field:
        from polymodal.errors import ConfigError

        raise ConfigError(f"model {type(model).__name__} transcribes but declares no text_field (the field of its "
                          "reference transcripts); set it in the model params or the axis's references_field")
    return field


#: The batch-meta key under which axes hand a textual field's raw strings to models.
RAW_STRINGS = "raw"


def with_raw_texts(data: EvalData, chunk: Chunk | None = None, *, samples: Sequence[dict[str, Any]] | None = None,
                   batch: Batch | None = None) -> Batch:
    """The batch (``chunk.batch``, or ``batch`` of ``samples``) with every textual field's raw strings
    in its meta (``meta[RAW_STRINGS]``).

    Models that tokenise with their own tokenizer (hf-vlm) read the strings,
    not our ids; which fields are text is the modality's declared ``textual``
    trait, never the field's name.
    """
    if chunk is not None:
        samples, batch = chunk.samples, chunk.batch
    assert samples is not None and batch is not None
    inputs = dict(batch.inputs)
    for field, mb in batch.inputs.items():
        if not field_traits(data, field).textual:
            continue
        texts = [s.get(field) for s in samples]
        if all(isinstance(t, str) for t in texts):
            inputs[field] = attrs.evolve(mb, meta={**mb.meta, RAW_STRINGS: texts})
    return attrs.evolve(batch, inputs=inputs)
