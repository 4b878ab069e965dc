"""Built-in metric plugins, one entry point per metric family.

Plugin objects are named ``<family>_plugin``: a bare ``caption`` would be
replaced by the ``caption`` submodule as soon as that is imported, and the
entry point would then load a module instead of the plugin.

Light on purpose: components are ``module:attribute`` strings, so listing
metrics imports neither torch nor numpy.

=================  ==========================================================
entry point        registers
=================  ==========================================================
metric.caption     ``bleu``, ``rouge-l``, ``cider-d``, ``caption-scores``
metric.fidelity    ``fid``, ``kid``, ``inception-score``
metric.classify    ``classification`` (accuracy top-k, macro F1, balanced acc.), ``accuracy``,
                   ``macro-f1``, ``balanced-accuracy`` (one figure each)
metric.retrieval   ``retrieval`` (Recall@K both ways, ranks, MRR, mAP; chunked)
metric.zeroshot    ``zero-shot`` (template class embeddings, top-k, per-class)
metric.clipscore   ``clipscore``
metric.asr         ``wer``, ``cer`` (corpus-level, equal to jiwer; normalisation options)
metric.vqa         ``vqa-accuracy`` (official VQAv2), ``choice-accuracy`` (multiple choice)
=================  ==========================================================
"""

from polymodal import components

_M = "polymodal_plugins.metrics"


def _metric(name: str, target: str, description: str, feeds: tuple[str, ...] = ()) -> tuple:
    """A metric spec; ``feeds``: the model capabilities whose outputs it scores (the task axis reads it)."""
    return ("metrics", name, f"{_M}.{target}",
            {"description": description, "tags": ["metric"], "capabilities": list(feeds)})


caption_plugin = components(
    _metric("bleu", "caption:BLEU",
            "Corpus BLEU-1..4 exactly as coco-caption (closest-ref brevity penalty).", feeds=("caption",)),
    _metric("rouge-l", "caption:ROUGEL",
            "ROUGE-L (beta 1.2, best reference) exactly as coco-caption.", feeds=("caption",)),
    _metric("cider-d", "caption:CIDErD",
            "CIDEr-D (coco-caption's CIDEr: sigma 6, clipping, x10), corpus-level.", feeds=("caption",)),
    _metric("caption-scores", "caption:CaptionScores",
            "BLEU-1..4, ROUGE-L and CIDEr-D in one pass over the corpus.", feeds=("caption",)),
)
fidelity_plugin = components(
    _metric("fid", "fidelity:FID", "Frechet distance of features, as torch-fidelity computes FID."),
    _metric("kid", "fidelity:KID", "Kernel Inception Distance (poly kernel, subsets), as torch-fidelity."),
    _metric("inception-score", "fidelity:InceptionScore", "Inception Score over splits, as torch-fidelity."),
)
classify_plugin = components(
    _metric("classification", "classification:ClassificationReport",
            "Top-k accuracy, macro F1, balanced accuracy and confusion matrix.", feeds=("classify",)),
    _metric("accuracy", "classification:Accuracy",
            "Top-1 accuracy (one figure of 'classification').", feeds=("classify",)),
    _metric("macro-f1", "classification:MacroF1",
            "Macro F1 over the classes that occur (one figure of 'classification').", feeds=("classify",)),
    _metric("balanced-accuracy", "classification:BalancedAccuracy",
            "Mean per-class recall (one figure of 'classification').", feeds=("classify",)),
)
retrieval_plugin = components(
    _metric("retrieval", "retrieval:RetrievalRecall",
            "Recall@K both ways (any caption counts), mean/median rank, MRR, mAP; chunked, bounded memory.",
            feeds=("embed",)),
)
zeroshot_plugin = components(
    _metric("zero-shot", "zeroshot:ZeroShotAccuracy",
            "Zero-shot top-1/top-5 and mean per-class recall from prompt-template class embeddings."),
)
clipscore_plugin = components(
    _metric("clipscore", "clipscore:CLIPScore", "CLIPScore (2.5 * max(cos, 0)) through any dual encoder."),
)
asr_plugin = components(
    _metric("wer", "asr:WordErrorRate", "Corpus word error rate, equal to jiwer (case/punctuation/whitespace options).",
            feeds=("transcribe",)),
    _metric("cer", "asr:CharErrorRate", "Corpus character error rate, equal to jiwer (spaces count).",
            feeds=("transcribe",)),
)
vqa_plugin = components(
    _metric("vqa-accuracy", "vqa:VQAAccuracy",
            "VQA accuracy exactly as the official VQAv2 evaluation (normalisation, leave-one-out min(n/3, 1)).",
            feeds=("answer",)),
    _metric("choice-accuracy", "vqa:ChoiceAccuracy",
            "Multiple-choice accuracy from free-text replies (letter/option extraction; failures counted)."),
)
