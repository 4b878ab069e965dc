"""Reading the official VQAv2 files: questions JSON, annotations JSON, results JSON.

Torch- and numpy-free. Formats (as the VQAv2 site publishes them):

* questions: ``{"questions": [{"question_id", "image_id", "question"}, ...]}``
* annotations: ``{"annotations": [{"question_id", "image_id", "question_type",
  "answer_type", "answers": [{"answer", "answer_id", ...}, ...]}, ...]}``
* results: ``[{"question_id", "answer"}, ...]``

Like the official loader, the results must answer exactly the annotated
questions: a missing or unknown id is an error naming the file and the id,
never a score over a silently different set of questions.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import attrs

from polymodal.errors import DataError


@attrs.frozen
class VQAQuestion:
    """One annotated question: its human answers and the types the report groups by."""

    question_id: int | str
    image_id: int | str | None
    question: str | None
    answers: tuple[str, ...]
    answer_type: str
    question_type: str


def load_json(path: str | Path, what: str) -> Any:
    p = Path(path)
    try:
        with p.open(encoding="utf-8") as fh:
            return json.load(fh)
    except FileNotFoundError:
        raise DataError(f"{p}: no such file (expected the {what})") from None
    except json.JSONDecodeError as exc:
        raise DataError(f"{p}: invalid JSON at line {exc.lineno}: {exc.msg} (expected the {what})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{p}: cannot read the {what}: {exc}") from None


def _list_under(data: Any, key: str, path: str | Path, what: str) -> list:
    if not isinstance(data, dict) or not isinstance(data.get(key), list):
        raise DataError(f"{path}: expected a JSON object with a '{key}' list ({what})")
    return data[key]


def _qid(item: Any, path: str | Path, where: str) -> int | str:
    if not isinstance(item, dict) or "question_id" not in item:
        raise DataError(f"{path}: {where}: expected an object with 'question_id'")
    qid = item["question_id"]
    if isinstance(qid, bool) or not isinstance(qid, (int, str)):
        raise DataError(f"{path}: {where}: 'question_id' must be an integer or a string, got {qid!r}")
    return qid


def read_vqa_annotations(annotations: str | Path, questions: str | Path | None = None) -> list[VQAQuestion]:
    """The annotations (and, when given, the questions file that must match them) in file order."""
    anns = _list_under(load_json(annotations, "VQAv2 annotations"), "annotations", annotations, "VQAv2 annotations")
    texts: dict[int | str, dict] = {}
    if questions is not None:
        qs = _list_under(load_json(questions, "VQAv2 questions"), "questions", questions, "VQAv2 questions")
        for i, q in enumerate(qs):
            texts[_qid(q, questions, f"questions[{i}]")] = q
    out: list[VQAQuestion] = []
    seen: set = set()
    for i, a in enumerate(anns):
        where = f"annotations[{i}]"
        qid = _qid(a, annotations, where)
        if qid in seen:
            raise DataError(f"{annotations}: {where}: duplicate question_id {qid!r}")
        seen.add(qid)
        answers = a.get("answers")
        if not isinstance(answers, list) or not answers or not all(
                isinstance(x, dict) and isinstance(x.get("answer"), str) for x in answers):
            raise DataError(f"{annotations}: {where} (question_id {qid!r}): 'answers' must be a non-empty "
                            "list of {\"answer\": str, ...}")
        for key in ("answer_type", "question_type"):
            if not isinstance(a.get(key), str):
                raise DataError(f"{annotations}: {where} (question_id {qid!r}): missing string '{key}'")
        question = None
        if questions is not None:
            if qid not in texts:
                raise DataError(f"{questions}: no question for question_id {qid!r} of {annotations}")
            question = texts[qid].get("question")
        out.append(VQAQuestion(qid, a.get("image_id"), question, tuple(x["answer"] for x in answers),
                               a["answer_type"], a["question_type"]))
    if not out:
        raise DataError(f"{annotations}: no annotations")
    if questions is not None and len(texts) != len(out):
        extra = next(k for k in texts if k not in seen)
        raise DataError(f"{questions}: question_id {extra!r} has no annotation in {annotations}")
    return out


def read_vqa_results(results: str | Path, expected: list[VQAQuestion]) -> list[str]:
    """The results file -> one answer per expected question, in the same order."""
    data = load_json(results, "VQAv2 results")
    if not isinstance(data, list):
        raise DataError(f"{results}: expected a JSON list of {{\"question_id\": ..., \"answer\": ...}}")
    known = {q.question_id for q in expected}
    answers: dict[int | str, str] = {}
    for i, r in enumerate(data):
        qid = _qid(r, results, f"[{i}]")
        if not isinstance(r.get("answer"), str):
            raise DataError(f"{results}: [{i}] (question_id {qid!r}): 'answer' must be a string")
        if qid in answers:
            raise DataError(f"{results}: [{i}]: duplicate question_id {qid!r}")
        if qid not in known:
            raise DataError(f"{results}: [{i}]: question_id {qid!r} is not in the annotations")
        answers[qid] = r["answer"]
    missing = [q.question_id for q in expected if q.question_id not in answers]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise DataError(f"{results}: no answer for question_id {missing[0]!r}{more}")
    return [answers[q.question_id] for q in expected]
