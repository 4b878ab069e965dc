"""Multiple-choice accuracy: answer extraction from free text, and circular evaluation.

Torch-free. A generative model rarely answers with a bare letter, so the
letter is *extracted* from its text, in this order (first rule that gives
exactly one valid option wins):

1. the whole reply is a letter: ``B``, ``(B)``, ``B.``, ``b)``;
2. an explicit statement: ``The answer is (B)``, ``Answer: B``, ``answer is option B``;
3. a reply that starts with a marked letter (``B. a cat``, ``(B) a cat``, ``B: cat``) or
   holds a bracketed valid letter (``... so I pick (B) ...``), all naming the same option;
4. exactly one option's text appears in the reply (whole words, case-insensitive).

Anything else is an **extraction failure**: it counts as wrong *and* is
counted and reported, never dropped (an "accuracy over the parsable replies"
flatters a model that often rambles).

Circular evaluation (MMBench): each question is asked once per rotation of
its options; it counts as correct only if every rotation is answered right,
which removes the gain from a position bias ("always A").
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Sequence

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def option_letters(n: int) -> str:
    if not 1 <= n <= len(LETTERS):
        raise ValueError(f"a multiple-choice question needs 1..{len(LETTERS)} options, got {n}")
    return LETTERS[:n]


def _one(found: set[int]) -> int | None:
    return next(iter(found)) if len(found) == 1 else None


def extract_choice(reply: str, options: Sequence[str]) -> int | None:
    """The chosen option's index, or ``None`` when the reply names no single valid option."""
    letters = option_letters(len(options))
    text = " ".join(reply.split())
    valid = f"[{letters}{letters.lower()}]"
    # only a bare reply may be a lower-case letter: elsewhere "a" is an article ("the answer is a cat")
    rules = (
        rf"^\(?({valid})\)?[.:)]?$",
        rf"(?i:\banswer\s*(?:is|:)?\s*(?:option\s*)?:?\s*)\(?([{letters}])\b\)?",
    )
    for pattern in rules:
        found = {letters.index(m.group(1).upper()) for m in re.finditer(pattern, text)}
        if found:
            return _one(found)
    # a leading marked letter and bracketed letters elsewhere must agree: "(A) or (B)" is no answer
    found = {letters.index(m.group(1)) for m in re.finditer(rf"^\(?([{letters}])[.:)]\s", text)}
    found |= {letters.index(m.group(1)) for m in re.finditer(rf"\(([{letters}])\)", text)}
    if found:
        return _one(found)
    lowered = text.lower()
    found = {i for i, opt in enumerate(options)
             if opt.strip() and re.search(rf"(?<!\w){re.escape(' '.join(opt.lower().split()))}(?!\w)", lowered)}
    return _one(found)


def rotate(options: Sequence[str], answer: int, shift: int) -> tuple[list[str], int]:
    """Options rotated left by ``shift`` and the answer's new index."""
    n = len(options)
    return [options[(i + shift) % n] for i in range(n)], (answer - shift) % n


def choice_summary(predicted: Sequence[int | None], answers: Sequence[int],
                   groups: Sequence[Hashable] | None = None) -> dict:
    """Accuracy, extraction failures and (with ``groups``, one id per rotation's question) circular accuracy."""
    if len(predicted) != len(answers) or (groups is not None and len(groups) != len(answers)):
        raise ValueError("predicted, answers and groups must have one entry per question")
    if not answers:
        raise ValueError("no questions to score")
    correct = [p is not None and p == a for p, a in zip(predicted, answers)]
    failures = sum(p is None for p in predicted)
    out = {"accuracy": sum(correct) / len(correct), "num_questions": len(correct),
           "extraction_failures": failures, "extraction_failure_rate": failures / len(correct)}
    if groups is not None:
        by_group: dict[Hashable, bool] = {}
        for g, c in zip(groups, correct):
            by_group[g] = by_group.get(g, True) and c
        out["circular_accuracy"] = sum(by_group.values()) / len(by_group)
        out["num_circular_groups"] = len(by_group)
    return out
