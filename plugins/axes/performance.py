"""What the robustness axes measure on a model: accuracy, retrieval recall@1, word accuracy.

A robustness axis compares one number between clean and damaged inputs, so
it needs a single headline metric per model kind: top-1 accuracy for a
``classify`` model, recall@1 in both directions of its embedding pair for an
``embed`` model, word accuracy (``1 - WER``, corpus-level, equal to jiwer
after the documented normalisation) for a ``transcribe`` model. All are
higher-is-better, so the curve summaries read the same for every kind and a
transcriber's ``corruption_error`` is its mean WER.

Every headline is a registered metric built by name (:data:`HEADLINE`, or an
axis's ``headline`` parameter), never imported: a plugin that ``replaces``
``accuracy``, ``retrieval``, ``wer`` or ``vqa-accuracy`` is what the
robustness axes measure. A lower-is-better metric (its declared
``higher_is_better``, or for a figure of a dict its ``figure_directions``
entry, is False) becomes ``1 - value``. A metric computing a dict of figures
names the one(s) that are its headline in ``headline_figures`` (the
``retrieval`` metric: recall@1 text->image and image->text), never found by
a name guess. Metric states synchronise through torchmetrics on every rank,
an empty shard's included; the embedding meter gathers the embeddings on
every rank instead and ranks the whole split locally.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch

import attrs

from polymodal.batch import Batch
from polymodal.errors import ConfigError, UnknownNameError
from polymodal.evaluation import declared_direction, headline_figures
from polymodal.stats import consistent_per_sample


#: Default headline metric (registry name) per model capability. ``embed``: the registered ``retrieval``,
#: whose declared ``headline_figures`` are recall@1 both ways (what the meter reported before it was built
#: by name); its kernel ranks ties by index, so a collapsed model (the ``missing`` corruption makes every
#: embedding equal) scores about chance, not 1.0.
HEADLINE: dict[str, str] = {"classify": "accuracy", "embed": "retrieval", "transcribe": "wer",
                            "answer": "vqa-accuracy"}
#: What an ``embed`` headline is built with (the retrieval axis's default ``ks``; the embed contract).
EMBED_PARAMS: dict[str, Any] = {"ks": (1, 5, 10)}
#: Row names of the default headlines (what rows were called before headlines were chosen by name).
_DEFAULT_KEYS = {"classify": "accuracy", "transcribe": "word_accuracy", "answer": "qa_accuracy"}


def headline_names(chosen: Mapping[str, str] | None) -> dict[str, str]:
    """:data:`HEADLINE` updated with a suite's ``headline = {capability = "metric"}`` table."""
    return {**HEADLINE, **(chosen or {})}


def check_headline(plugins: Any, chosen: Mapping[str, str] | None, where: str) -> None:
    """Refuse, before training, a headline naming an unknown metric, one not declaring the capability, or
    one whose direction is undeclared (the headline is made higher-is-better from it, never from a name)."""
    if chosen is None:
        return
    if not isinstance(chosen, Mapping) or not all(isinstance(v, str) for v in chosen.values()):
        raise ConfigError(f"{where}.headline: expected a table capability = \"metric name\", got {chosen!r}")
    for cap, name in chosen.items():
        if cap not in HEADLINE:
            raise ConfigError(f"{where}.headline: no headline is chosen by name for capability {cap!r} "
                              f"(choosable: {', '.join(sorted(HEADLINE))})")
        try:
            spec = plugins.get("metrics", name)
        except UnknownNameError as exc:  # the registry's did-you-mean, under the key that named it
            raise ConfigError(f"{where}.headline.{cap}: {exc}") from None
        if cap not in spec.capabilities:
            raise ConfigError(f"{where}.headline.{cap}: metric {name!r} does not declare capability {cap!r} "
                              f"(its spec says {sorted(spec.capabilities) or 'none'})")
        factory = spec.load()
        # A dict of figures of different senses names its headline figures; their directions are read
        # (figure_directions) when the metric is built, at the start of the axis.
        if not isinstance(getattr(factory, "higher_is_better", None), bool) and \
                getattr(factory, "headline_figures", None) is None:
            raise ConfigError(f"{where}.headline.{cap}: metric {name!r} declares neither a boolean higher_is_better "
                              "nor headline_figures, so its figure cannot be turned into a higher-is-better headline")


@attrs.frozen
class Headline:
    """One capability's headline metric: the registry name, the row name and a builder."""

    capability: str
    name: str
    build: Callable[..., Any]
    #: The registered factory (a class), for its declared ``higher_is_better`` before any instance exists.
    factory: Any = None

    @property
    def key(self) -> str:
        """The row's metric name: the legacy name for the default metric, else the metric's (``1-`` if inverted)."""
        if self.name == HEADLINE[self.capability] and self.capability in _DEFAULT_KEYS:
            return _DEFAULT_KEYS[self.capability]
        hib = getattr(self.factory, "higher_is_better", True)
        if not isinstance(hib, bool):  # a dict of figures: the sense of its one declared headline figure
            figures = headline_figures(self.factory)
            hib = declared_direction(self.factory, figures[0]) if figures and len(figures) == 1 else None
        return self.name if hib is not False else f"1-{self.name}"

    def value(self, metric: Any) -> float:
        """The metric's ``compute()`` (a collective under torchrun) as a higher-is-better number.

        A dict's figure is the one the metric declares in ``headline_figures`` (exactly one), else the
        key equal to the metric's registry name."""
        out = metric.compute()
        figure = None
        if isinstance(out, dict):
            declared = headline_figures(metric)
            if declared is not None and len(declared) != 1:
                raise ConfigError(f"headline metric {self.name!r} declares headline_figures {list(declared)}; "
                                  f"a {self.capability} headline needs exactly one")
            figure = declared[0] if declared else self.name
            if figure not in out:
                raise ConfigError(f"headline metric {self.name!r} computes several figures ({', '.join(out)}) "
                                  f"and none named {figure!r}; declare the headline in headline_figures")
            out = out[figure]
        value = float(out)
        return value if declared_direction(metric, figure) is not False else 1.0 - value


def headline(plugins: Any, capability: str, chosen: Mapping[str, str] | None = None) -> Headline:
    """The headline of ``capability`` built through ``plugins`` (a ``replaces`` there is what is used)."""
    name = headline_names(chosen)[capability]
    spec = plugins.get("metrics", name)
    return Headline(capability, name, lambda **kw: plugins.build("metrics", name, **kw), spec.load())


def _gathered(local: list[float]) -> list[float]:
    """Per-sample scores of every rank's contiguous shard, joined in split order (a collective)."""
    from polymodal.evaluation import active, all_gather_object

    return [x for part in all_gather_object(local) for x in part] if active() else local


class PerformanceMeter:
    """Accumulates batches of one condition and reports ``{(metric, direction): value}``.

    After :meth:`compute`, ``samples`` holds the per-sample scores behind each
    value that is a mean over samples (split order, every rank's shard), for
    the leaderboard's intervals and paired tests; corpus-level values have none.
    """

    samples: dict[tuple[str, str | None], list[float]]
    #: Every meter reports a headline score (accuracy, recall, word accuracy): higher is better.
    higher_is_better: bool = True

    def keys(self) -> list[tuple[str, str | None]]:
        """The ``(metric, direction)`` keys :meth:`compute` returns."""
        raise NotImplementedError

    def update(self, model: Any, batch: Batch, samples: list[dict[str, Any]] | None = None) -> None:
        """One batch; ``samples`` are the raw samples it was collated from (references live there)."""
        raise NotImplementedError

    def compute(self) -> dict[tuple[str, str | None], float]:
        raise NotImplementedError


class AccuracyMeter(PerformanceMeter):
    """Top-1 accuracy of ``model.predict`` against the model's target, through the headline metric.

    The metric is built with ``num_classes`` (the widest logits of any rank) and ``top_k=(1,)``, the
    classify contract the task axis uses, once every rank has seen its shard.
    """

    def __init__(self, head: Headline) -> None:
        self.head = head
        self.outputs: list[tuple[torch.Tensor, torch.Tensor]] = []
        self.hits: list[float] = []
        self.samples = {}

    def keys(self) -> list[tuple[str, str | None]]:
        return [(self.head.key, None)]

    def update(self, model: Any, batch: Batch, samples: list[dict[str, Any]] | None = None) -> None:
        with torch.no_grad():
            logits = model.predict(batch).float()
        self.add(logits, model.target(batch))

    def add(self, logits: torch.Tensor, target: torch.Tensor) -> None:
        """One batch of class scores ``[B, C]`` and targets ``[B]`` (the adversarial axis feeds attacked ones)."""
        logits = logits.detach().float().cpu()
        target = target.reshape(-1).long().cpu()
        self.outputs.append((logits, target))
        self.hits += (logits.argmax(-1) == target).float().tolist()

    def compute(self) -> dict[tuple[str, str | None], float]:
        from polymodal.evaluation import all_reduce_max

        # Unconditional collectives: a rank with an empty shard learns the class count and joins the sync.
        width = float(self.outputs[0][0].shape[-1]) if self.outputs else 0.0
        num_classes = int(all_reduce_max(width))
        scores = _gathered(self.hits)
        key = (self.head.key, None)
        if not num_classes:
            return {key: float("nan")}
        metric = self.head.build(num_classes=num_classes, top_k=(1,))
        for logits, target in self.outputs:
            metric.update(logits, target)
        value = self.head.value(metric)
        matched = consistent_per_sample(scores, value)
        self.samples = {key: matched} if matched is not None else {}
        return {key: value}


class RecallMeter(PerformanceMeter):
    """The ``embed`` headline (``retrieval``: recall@1 both ways) between the two fields of an embedding pair.

    Sample ``i`` of one field matches sample ``i`` of the other. The metric follows the embed contract
    the retrieval axis feeds: built with ``ks`` (:data:`EMBED_PARAMS`), updated with ``(gallery,
    gallery_ids, queries, query_gallery_ids)`` -- the pair's second field is the gallery, so the
    ``text_to_image_<figure>`` keys are ``a->b`` and ``image_to_text_<figure>`` ``b->a`` -- and its
    declared ``headline_figures`` are the rows (named ``<figure>``, ``1-<figure>`` when lower is
    better); a metric declaring none and computing one number gives one row, direction ``a<->b``.
    Per-sample scores come from ``compute_details()`` where the metric offers it.

    Embeddings are gathered for the whole split first: retrieval ranks against every item. Under
    ``torchrun`` each rank embeds its contiguous shard, every rank gathers every shard (rank order =
    split order; one unconditional collective, an empty shard's included) and measures the whole split
    itself with metric syncs kept local, so every rank holds the same figures.
    """

    def __init__(self, pair: tuple[str, str], head: Headline,
                 figures: list[tuple[tuple[str, str], str | None, bool | None]] | None = None):
        self.pair = pair
        self.head = head
        self.embeddings: dict[str, list[torch.Tensor]] = {f: [] for f in pair}
        self.samples = {}
        #: The rows (see :func:`_embed_figures`); a factory passes them, read once for all its meters.
        self.figures = figures if figures is not None else _embed_figures(head, pair)

    def keys(self) -> list[tuple[str, str | None]]:
        return [key for key, _figure, _hib in self.figures]

    def update(self, model: Any, batch: Batch, samples: list[dict[str, Any]] | None = None) -> None:
        with torch.no_grad():
            for f in self.pair:
                self.embeddings[f].append(model.embed(batch, f).float().cpu())

    def compute(self) -> dict[tuple[str, str | None], float]:
        from polymodal.evaluation import all_gather_object, local

        local_emb = {f: torch.cat(self.embeddings[f]) if self.embeddings[f] else torch.zeros(0, 0)
                     for f in self.pair}
        parts = all_gather_object(local_emb)  # every rank, whatever its shard held
        a, b = (torch.cat([p[f] for p in parts if p[f].numel()] or [torch.zeros(0, 0)]) for f in self.pair)
        n = len(a)
        if not n:  # no sample on any rank
            return {key: float("nan") for key in self.keys()}
        with local():  # every rank holds the whole split: no metric sync
            metric = self.head.build(**EMBED_PARAMS)
            ids = torch.arange(n)
            metric.update(b, ids, a, ids)  # gallery: the pair's second field; queries: its first
            details = getattr(metric, "compute_details", None)
            value, per_query = details() if callable(details) else (metric.compute(), {})
        out: dict[tuple[str, str | None], float] = {}
        for key, figure, hib in self.figures:
            if figure is None:
                if isinstance(value, dict):
                    raise ConfigError(f"embed headline metric {self.head.name!r} computes several figures "
                                      f"({', '.join(value)}) and declares no headline_figures naming its headline")
                got, scores = float(value), None
            else:
                if not isinstance(value, dict) or figure not in value:
                    raise ConfigError(f"embed headline metric {self.head.name!r} declares headline figure "
                                      f"{figure!r}, which its compute() does not return")
                got = float(value[figure])
                raw = per_query.get(figure)
                scores = [float(x) for x in raw] if raw is not None and len(raw) == n else None
            if hib is False:
                got = 1.0 - got
                scores = None if scores is None else [1.0 - x for x in scores]
            out[key] = got
            matched = consistent_per_sample(scores, got)
            if matched is not None:
                self.samples[key] = matched
        return out


def _embed_figures(head: Headline, pair: tuple[str, str]) -> list[tuple[tuple[str, str], str | None, bool | None]]:
    """``((row metric, direction), compute() key or None, declared direction)`` of each embed headline row.

    Read from a built instance (``headline_figures`` and ``figure_directions`` may depend on its
    parameters), so a metric whose facts do not fit is refused when the axis starts, before any data.
    """
    from polymodal_plugins.axes.retrieval import PREFIXES

    a, b = pair
    metric = head.build(**EMBED_PARAMS)
    declared = headline_figures(metric)
    if declared is None:
        hib = declared_direction(metric)
        if hib is None:
            raise ConfigError(f"embed headline metric {head.name!r} declares neither headline_figures nor a "
                              "boolean higher_is_better")
        return [((head.name if hib else f"1-{head.name}", f"{a}<->{b}"), None, hib)]
    sides = {PREFIXES[0]: f"{a}->{b}", PREFIXES[1]: f"{b}->{a}"}
    rows = []
    for figure in declared:
        prefix = next((p for p in PREFIXES if figure.startswith(p)), None)
        hib = declared_direction(metric, figure)
        if prefix is None or hib is None:
            raise ConfigError(f"embed headline metric {head.name!r}: headline figure {figure!r} must start with "
                              f"{' or '.join(PREFIXES)} (the direction) and have a declared direction")
        name = figure[len(prefix):]
        rows.append(((name if hib else f"1-{name}", sides[prefix]), figure, hib))
    return rows


class WordAccuracyMeter(PerformanceMeter):
    """``1 - WER`` of ``model.transcribe`` against each raw sample's reference transcript.

    The headline metric (``wer`` by default) is built with ``normalize=True`` and updated with
    ``(hypotheses, references)``; corpus-level, so no per-sample scores.
    """

    def __init__(self, references_field: str, head: Headline):
        self.references_field = references_field
        self.head = head
        self.metric = head.build(normalize=True)
        self.samples = {}  # corpus-level WER: not a mean over samples

    def keys(self) -> list[tuple[str, str | None]]:
        return [(self.head.key, None)]

    def update(self, model: Any, batch: Batch, samples: list[dict[str, Any]] | None = None) -> None:
        if samples is None:
            raise ConfigError("word accuracy needs the raw samples (their reference transcripts)")
        refs = [s.get(self.references_field) for s in samples]
        bad = next((s.get("id") for s, r in zip(samples, refs) if not isinstance(r, str)), None)
        if bad is not None or len(refs) != len(samples):
            raise ConfigError(f"sample {bad!r} has no reference transcript field {self.references_field!r}")
        with torch.no_grad():
            self.metric.update(model.transcribe(batch), refs)

    def compute(self) -> dict[tuple[str, str | None], float]:
        return {(self.head.key, None): self.head.value(self.metric)}


class AnswerAccuracyMeter(PerformanceMeter):
    """QA accuracy of a model with the ``answer`` capability, a mean over questions.

    Named ``qa_accuracy``: the leaderboard reads the direction of an undeclared
    metric from its name, and "answer" holds "wer".

    Samples with ``answers`` (human answers) are scored by the headline metric
    (``vqa-accuracy``, the official VQAv2 accuracy) fed ``(replies, human answers)``;
    samples with ``options`` and ``answer`` score 1 when ``model.answer_choice``
    picks the right option (an extraction failure is 0). Per-sample scores come
    from the metric's ``last_scores`` after each update where it keeps them.
    """

    def __init__(self, head: Headline) -> None:
        self.head = head
        self.metric = head.build()
        self.choice: list[float] = []
        self.asked = 0
        self.scores: list[float] | None = []
        self.samples = {}

    def keys(self) -> list[tuple[str, str | None]]:
        return [(self.head.key, None)]

    def update(self, model: Any, batch: Batch, samples: list[dict[str, Any]] | None = None) -> None:
        if not samples:
            raise ConfigError("qa accuracy needs the raw samples (their answers)")
        with torch.no_grad():
            if all("options" in s and "answer" in s for s in samples):
                picked, _ = model.answer_choice(batch, [list(s["options"]) for s in samples])
                got = [float(p is not None and p == int(s["answer"])) for p, s in zip(picked, samples)]
                self.choice += got
            elif all("answers" in s for s in samples):
                self.metric.update(model.answer(batch), [[str(a) for a in s["answers"]] for s in samples])
                self.asked += len(samples)
                got = getattr(self.metric, "last_scores", None)
                got = list(got) if isinstance(got, list) and len(got) == len(samples) else None
                if got is not None and declared_direction(self.metric) is False:
                    got = [1.0 - x for x in got]  # the headline's sense, so the scores average to it
            else:
                raise ConfigError("qa accuracy needs every sample to carry 'answers' or 'options' and 'answer'")
        self.scores = self.scores + got if self.scores is not None and got is not None else None

    def compute(self) -> dict[tuple[str, str | None], float]:
        parts = _gathered([(self.choice, self.asked, self.scores)])
        asked = sum(p[1] for p in parts)
        choice = [x for p in parts for x in p[0]]
        # Every rank computes (syncs) the metric when any rank asked open questions: the same branch everywhere.
        vqa = self.head.value(self.metric) if asked else 0.0
        total = asked + len(choice)
        value = (vqa * asked + sum(choice)) / total if total else float("nan")
        scores = None if any(p[2] is None for p in parts) else [x for p in parts for x in p[2]]
        matched = consistent_per_sample(scores, value) if scores and total else None
        key = (self.head.key, None)
        self.samples = {key: matched} if matched is not None else {}
        return {key: value}


def meter_factory(model: Any, pair: list[str] | None, plugins: Any,
                  chosen: Mapping[str, str] | None = None) -> Any:
    """A zero-argument constructor of the right meter for ``model``'s capabilities.

    ``plugins``: the registry the headline metrics are built from (``ctx.plugins``, so ``replaces``
    counts); ``chosen``: an axis's ``headline`` table over :data:`HEADLINE`.
    """
    caps = getattr(model, "capabilities", frozenset())
    if "classify" in caps:
        head = headline(plugins, "classify", chosen)
        return lambda: AccuracyMeter(head)
    if "embed" in caps:
        fields = tuple(pair) if pair else tuple(model.embed_fields)[:2]
        if len(fields) != 2 or any(f not in model.embed_fields for f in fields):
            raise ConfigError(f"pair: expected two of the model's embedding fields "
                              f"({', '.join(model.embed_fields)}), got {list(fields)}")
        head = headline(plugins, "embed", chosen)
        figures = _embed_figures(head, (fields[0], fields[1]))  # a metric whose facts do not fit: refused here
        return lambda: RecallMeter((fields[0], fields[1]), head, figures)
    if "transcribe" in caps:
        from polymodal_plugins.axes.samples import transcript_field

        refs = transcript_field(model)
        head = headline(plugins, "transcribe", chosen)
        return lambda: WordAccuracyMeter(refs, head)
    if "answer" in caps:
        head = headline(plugins, "answer", chosen)
        return lambda: AnswerAccuracyMeter(head)
    raise ConfigError(f"model {type(model).__name__} can neither classify, embed nor transcribe; "
                      "robustness axes need one")
