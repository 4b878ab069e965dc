"""``polymodal score``: score files another tool produced, with no model involved.

Light at import (argparse only): the CLI builds every command's parser on
start-up, so numpy is imported inside the handlers. Scoring files never
imports torch or torchmetrics (only ``--real-dir``/``--generated-dir``, which
run an image encoder, do): the handlers call the numpy kernels that the
in-run torchmetrics wrappers also call, so both give the same numbers, and
a whole ``polymodal score`` process costs little more than the arithmetic.

Sub-commands and their JSON keys:

* ``captions --references ANN.json --predictions RES.json [--per-image]``:
  ``bleu_1``..``bleu_4``, ``rouge_l``, ``cider`` (CIDEr-D, coco-caption scale)
* ``retrieval --image-embeddings I.npy --text-embeddings T.npy --text-to-image M.npy [--k 1 5 10]``
* ``fid --real A.npy|DIR --generated B.npy|DIR`` [``--extractor``]: ``fid``; folders of images go
  through the standard FID Inception (``fid-inception``, equal to pytorch-fid) unless
  ``--extractor`` names a registered encoder; ``extractor`` and ``comparable_with_published``
  say which network made the number
* ``kid`` (same inputs, ``--subsets``, ``--subset-size``): ``kid_mean``, ``kid_std``
* ``is --logits L.npy [--splits 10]``: ``is_mean``, ``is_std``
* ``wer|cer --references R.jsonl --predictions P.jsonl [--normalize]``: ``wer`` / ``cer``,
  ``errors``, ``reference_length``, ``num_utterances`` (JSONL of ``{"id", "text"}``, ids in
  any order; equal to jiwer; never imports torch or numpy)
* ``vqa --annotations A.json --predictions R.json [--questions Q.json] [--per-question]``: ``overall``,
  ``per_answer_type``, ``per_question_type`` (fractions in [0, 1]), exactly as the official VQAv2
  evaluation; never imports torch or numpy
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from polymodal.errors import ConfigError, DataError


def add_score_command(parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    """Add the ``score`` sub-commands to ``parser``; return the handler."""
    sub = parser.add_subparsers(dest="score_kind", metavar="WHAT", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--output", "-o", type=Path, help="also write the JSON object to this file")

    p = sub.add_parser("captions", help="BLEU-1..4, ROUGE-L, CIDEr-D of COCO-format captions")
    p.add_argument("--references", required=True, type=Path, help="COCO annotations JSON")
    p.add_argument("--predictions", required=True, type=Path, help="COCO results JSON")
    p.add_argument("--per-image", action="store_true", help="include each image's scores")
    common(p)

    p = sub.add_parser("retrieval", help="Recall@K, ranks, MRR, mAP from embedding arrays")
    p.add_argument("--image-embeddings", required=True, type=Path)
    p.add_argument("--text-embeddings", required=True, type=Path)
    p.add_argument("--text-to-image", required=True, type=Path, help="[M] ints: each text's image row")
    p.add_argument("--k", type=int, nargs="+", default=[1, 5, 10])
    p.add_argument("--chunk-size", type=int, default=4096, help="bounds memory to about chunk^2 scores")
    p.add_argument("--no-normalize", action="store_true", help="use raw dot products instead of cosine")
    common(p)

    for name, helptext in (("fid", "Frechet distance"), ("kid", "Kernel Inception Distance")):
        p = sub.add_parser(name, help=f"{helptext} from feature arrays or image folders")
        p.add_argument("--real", type=Path, help="[N, D] features .npy, or a folder of images")
        p.add_argument("--generated", type=Path, help="[M, D] features .npy, or a folder of images")
        p.add_argument("--real-dir", type=Path, help="folder of real images (same as a folder in --real)")
        p.add_argument("--generated-dir", type=Path, help="folder of generated images")
        p.add_argument("--extractor", default="fid-inception",
                       help="fid-inception (default: the standard FID network, pytorch-fid's weights), a weights "
                            "file for it, or a registered image encoder name")
        p.add_argument("--image-size", type=int, default=299)
        if name == "kid":
            p.add_argument("--subsets", type=int, default=100)
            p.add_argument("--subset-size", type=int, default=1000)
            p.add_argument("--seed", type=int, default=2020)
        common(p)

    p = sub.add_parser("is", help="Inception Score from class logits")
    p.add_argument("--logits", required=True, type=Path, help="[N, C] logits .npy")
    p.add_argument("--splits", type=int, default=10)
    p.add_argument("--seed", type=int, default=2020)
    common(p)

    for name, unit in (("wer", "word"), ("cer", "character")):
        p = sub.add_parser(name, help=f"corpus {unit} error rate of transcripts (equal to jiwer)")
        p.add_argument("--references", required=True, type=Path, help='JSONL of {"id": ..., "text": ...}')
        p.add_argument("--predictions", required=True, type=Path, help='JSONL of {"id": ..., "text": ...}')
        p.add_argument("--normalize", action="store_true",
                       help="lower-case, remove Unicode punctuation, collapse whitespace before counting")
        common(p)

    p = sub.add_parser("vqa", help="VQA accuracy of VQAv2-format results, exactly as the official evaluation")
    p.add_argument("--annotations", required=True, type=Path, help="VQAv2 annotations JSON")
    p.add_argument("--predictions", required=True, type=Path, help='results JSON: [{"question_id", "answer"}]')
    p.add_argument("--questions", type=Path, help="VQAv2 questions JSON (checked against the annotations)")
    p.add_argument("--per-question", action="store_true", help="include each question's accuracy")
    common(p)

    return _handle


def _handle(args: argparse.Namespace) -> int:
    result = {
        "captions": _captions,
        "retrieval": _retrieval,
        "fid": _fid_kid,
        "kid": _fid_kid,
        "is": _inception,
        "wer": _error_rate,
        "cer": _error_rate,
        "vqa": _vqa,
    }[args.score_kind](args)
    text = json.dumps(result, indent=2, ensure_ascii=False)
    print(text)
    if args.output:
        try:
            args.output.write_text(text + "\n", encoding="utf-8")
        except OSError as exc:
            raise DataError(f"{args.output}: cannot write the scores: {exc.strerror}") from None
    return 0


def _captions(args: argparse.Namespace) -> dict[str, Any]:
    from polymodal_plugins.metrics.caption_scores import caption_scores
    from polymodal_plugins.metrics.ptb_tokenize import tokenize_caption
    from polymodal_plugins.metrics.score_inputs import read_caption_files

    ids, cands, refs = read_caption_files(args.references, args.predictions)
    print(f"scoring {len(ids)} images ...", file=sys.stderr)
    summary, per_image = caption_scores([tokenize_caption(c) for c in cands],
                                        [[tokenize_caption(r) for r in rs] for rs in refs])
    out: dict[str, Any] = {"num_images": len(ids), **summary}
    if args.per_image:
        out["per_image"] = [{"image_id": i, **s} for i, s in zip(ids, per_image)]
    return out


def _retrieval(args: argparse.Namespace) -> dict[str, Any]:
    from polymodal_plugins.metrics.retrieval_scores import retrieval_metrics
    from polymodal_plugins.metrics.score_inputs import read_array

    img = read_array(args.image_embeddings, "image embeddings [N, D]", 2)
    txt = read_array(args.text_embeddings, "text embeddings [M, D]", 2)
    t2i = read_array(args.text_to_image, "text-to-image indices [M]", 1, integer=True)
    if img.shape[1] != txt.shape[1]:
        raise DataError(f"{args.text_embeddings}: embedding size {txt.shape[1]} differs from "
                        f"{args.image_embeddings}'s {img.shape[1]}")
    if t2i.shape[0] != txt.shape[0]:
        raise DataError(f"{args.text_to_image}: {t2i.shape[0]} entries but {args.text_embeddings} has {txt.shape[0]} texts")
    bad = (t2i < 0) | (t2i >= img.shape[0])
    if bad.any():
        j = int(bad.nonzero()[0][0])
        raise DataError(f"{args.text_to_image}: entry [{j}] = {int(t2i[j])} is not an image row (0..{img.shape[0] - 1})")
    if any(k < 1 for k in args.k) or args.chunk_size < 1:
        raise ConfigError("--k values and --chunk-size must be positive")
    return retrieval_metrics(img.astype("float32", copy=False), txt.astype("float32", copy=False), t2i,
                             ks=args.k, chunk_size=args.chunk_size, normalize=not args.no_normalize, progress=True)


def _features(args: argparse.Namespace, which: str):
    from polymodal_plugins.metrics.score_inputs import read_array

    path, folder = getattr(args, which), getattr(args, f"{which}_dir")
    if (path is None) == (folder is None):
        raise ConfigError(f"give exactly one of --{which} (features .npy or a folder of images) or --{which}-dir")
    if path is not None and path.is_dir():
        path, folder = None, path
    if path is not None:
        return read_array(path, f"{which} features [N, D]", 2)
    from polymodal_plugins.metrics.feature_extractor import build_feature_extractor, extract_folder

    if getattr(args, "_extractor", None) is None:
        args._extractor = build_feature_extractor(args.extractor)
    return extract_folder(folder, args._extractor, args.image_size)


def _fid_kid(args: argparse.Namespace) -> dict[str, Any]:
    from polymodal_plugins.metrics.fidelity_scores import frechet_distance, kernel_inception_distance

    real, gen = _features(args, "real"), _features(args, "generated")
    if real.shape[1] != gen.shape[1]:
        raise DataError(f"feature sizes differ: real {real.shape[1]}, generated {gen.shape[1]}")
    ext = getattr(args, "_extractor", None)
    about = {} if ext is None else {"extractor": ext.description, "comparable_with_published": ext.standard_fid}
    try:
        if args.score_kind == "fid":
            return {"fid": frechet_distance(real, gen), "num_real": len(real), "num_generated": len(gen), **about}
        r = kernel_inception_distance(real, gen, subsets=args.subsets, subset_size=args.subset_size, seed=args.seed)
    except ValueError as exc:
        raise DataError(str(exc)) from None
    return {"kid_mean": r.mean, "kid_std": r.std, "num_real": len(real), "num_generated": len(gen), **about}


def _inception(args: argparse.Namespace) -> dict[str, Any]:
    from polymodal_plugins.metrics.fidelity_scores import inception_score
    from polymodal_plugins.metrics.score_inputs import read_array

    logits = read_array(args.logits, "logits [N, C]", 2)
    try:
        r = inception_score(logits, splits=args.splits, seed=args.seed)
    except ValueError as exc:
        raise DataError(f"{args.logits}: {exc}") from None
    return {"is_mean": r.mean, "is_std": r.std, "num_samples": len(logits)}


def _error_rate(args: argparse.Namespace) -> dict[str, Any]:
    from polymodal_plugins.metrics.error_rates import Normalization, count_errors
    from polymodal_plugins.metrics.transcripts import read_transcript_pairs

    ids, refs, preds = read_transcript_pairs(args.references, args.predictions)
    norm = Normalization.standard() if args.normalize else Normalization()
    counts = count_errors(refs, preds, args.score_kind, norm)
    if counts.reference_length == 0:
        raise DataError(f"{args.references}: every reference is empty{' after normalisation' * args.normalize}; "
                        f"the {args.score_kind.upper()} is undefined")
    return {args.score_kind: counts.rate, "errors": counts.errors, "reference_length": counts.reference_length,
            "num_utterances": len(ids), "normalized": bool(args.normalize)}


def _vqa(args: argparse.Namespace) -> dict[str, Any]:
    from polymodal_plugins.metrics.vqa_files import read_vqa_annotations, read_vqa_results
    from polymodal_plugins.metrics.vqa_scores import summarize, vqa_accuracy

    questions = read_vqa_annotations(args.annotations, args.questions)
    answers = read_vqa_results(args.predictions, questions)
    print(f"scoring {len(questions)} questions ...", file=sys.stderr)
    accs = [vqa_accuracy(a, q.answers) for a, q in zip(answers, questions)]
    out = summarize(accs, [q.answer_type for q in questions], [q.question_type for q in questions])
    if args.per_question:
        out["per_question"] = [{"question_id": q.question_id, "accuracy": a} for q, a in zip(questions, accs)]
    return out
