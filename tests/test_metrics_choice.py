"""Multiple-choice answer extraction, failure counting and circular evaluation."""

from __future__ import annotations

import pytest

from polymodal_plugins.metrics.choice_scores import choice_summary, extract_choice, rotate

OPTIONS = ["a cat", "a dog", "a red car", "nothing"]


@pytest.mark.parametrize("reply, want", [
    ("B", 1), ("(B)", 1), ("b", 1), ("C.", 2), ("D)", 3),
    ("The answer is (B).", 1), ("Answer: C", 2), ("the answer is option D", 3),
    ("B. a dog", 1), ("(A) a cat, clearly", 0),
    ("Looking closely, I would pick (C) here.", 2),
    ("It is a red car.", 2),               # option text
    ("The answer is a dog", 1),            # "a" is an article here, then the option text decides
    ("I think it shows A DOG", 1),
    # failures: nothing, or more than one option named
    ("I cannot tell.", None), ("", None), ("(A) or (B)", None), ("a cat and a dog", None),
    ("E", None),                            # not a valid letter for four options
])
def test_extract_choice(reply, want):
    assert extract_choice(reply, OPTIONS) == want


def test_rotation_moves_the_answer_with_its_option():
    opts, ans = rotate(OPTIONS, 1, 1)
    assert opts == ["a dog", "a red car", "nothing", "a cat"] and opts[ans] == "a dog"
    assert [rotate(OPTIONS, 2, k)[0][rotate(OPTIONS, 2, k)[1]] for k in range(4)] == ["a red car"] * 4


def test_summary_counts_failures_and_circular_needs_every_rotation():
    # question q1 right in all 2 rotations; q2 right once, wrong once; q3 one failure
    predicted = [0, 1, 2, 3, None, 1]
    answers = [0, 1, 2, 0, 1, 1]
    groups = ["q1", "q1", "q2", "q2", "q3", "q3"]
    s = choice_summary(predicted, answers, groups)
    assert s["accuracy"] == pytest.approx(4 / 6)
    assert s["extraction_failures"] == 1 and s["extraction_failure_rate"] == pytest.approx(1 / 6)
    assert s["circular_accuracy"] == pytest.approx(1 / 3) and s["num_circular_groups"] == 3
    # an always-"A" model gets 1/4 plain accuracy over rotations, and 0 circular
    n = 4
    preds, ans, grp = [], [], []
    for k in range(n):
        _, a = rotate(OPTIONS, 1, k)
        preds.append(0), ans.append(a), grp.append("q")
    s = choice_summary(preds, ans, grp)
    assert s["accuracy"] == 0.25 and s["circular_accuracy"] == 0.0


def test_choice_metric_class():
    from polymodal_plugins.metrics.vqa import ChoiceAccuracy

    m = ChoiceAccuracy()
    m.update(["B", "I don't know"], [OPTIONS, OPTIONS], [1, 0])
    m.update(["The answer is (A)"], [OPTIONS], [0])
    assert float(m.compute()) == pytest.approx(2 / 3) and int(m.extraction_failures) == 1
    assert m.last_scores == [1.0]
