"""VQA accuracy: hand-computed cases from the official VQAv2 rules, the metric class,
and ``polymodal score vqa`` on official-format files (one-line errors, torch-free)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from polymodal.cli import main
from polymodal_plugins.metrics.vqa_scores import normalize_answer, strip_punctuation, vqa_accuracy


def _humans(*groups: tuple[int, str]) -> list[str]:
    return [a for n, a in groups for _ in range(n)]


@pytest.mark.parametrize("pred, humans, want", [
    # leave-one-out over 10 humans: k matches -> (k * min((k-1)/3, 1) + (10-k) * min(k/3, 1)) / 10
    ("dog", _humans((1, "dog"), (9, "cat")), 0.3),          # (1*0 + 9*1/3)/10
    ("red", _humans((2, "red"), (8, "blue")), 0.6),         # (2*1/3 + 8*2/3)/10
    ("dog", _humans((3, "dog"), (7, "cat")), 0.9),          # (3*2/3 + 7*1)/10
    ("dog", _humans((4, "dog"), (6, "cat")), 1.0),
    ("fish", _humans((4, "dog"), (6, "cat")), 0.0),
    # humans disagree -> everything is normalised: case, articles, number words, punctuation, contractions
    ("The Two", _humans((5, "2"), (5, "two")), 1.0),
    ("a dog.", _humans((2, "dog"), (8, "cat")), 0.6),
    ("dont", _humans((2, "don't"), (8, "no")), 0.6),
    ("none", _humans((2, "0"), (8, "1")), 0.6),
    # humans agree (one distinct answer after stripping) -> compared verbatim, no normalisation
    ("yes", _humans((10, "yes")), 1.0),
    ("Yes", _humans((10, "yes")), 0.0),
    ("yes.", _humans((10, "yes")), 0.0),
    ("yes\n", _humans((9, "yes"), (1, " yes\t")), 1.0),     # whitespace is always cleaned
])
def test_hand_computed_official_cases(pred, humans, want):
    assert vqa_accuracy(pred, humans) == pytest.approx(want, abs=1e-12)


@pytest.mark.parametrize("text, want", [
    ("1,000", "1000"),            # a digit-comma-digit group: every mark is deleted
    ("red,white", "red white"),   # otherwise a mark touching no space becomes a space
    ("red, white", "red white"),  # ... and one touching a space is deleted
    ("3.5", "3.5"),               # a period before a digit stays
    ("dog.", "dog"),
    ("x.y", "xy"),
])
def test_punctuation_rules(text, want):
    assert " ".join(strip_punctuation(text).split()) == want


def test_normalize_answer_all_steps():
    assert normalize_answer("  The TWO dogs!\n") == "2 dogs"
    assert normalize_answer("an isnt") == "isn't"
    assert normalize_answer("." * 40) == "." * 8  # the official call removes at most 32 periods


def test_metric_class_is_the_mean_over_batches():
    from polymodal_plugins.metrics.vqa import VQAAccuracy

    m = VQAAccuracy()
    m.update(["dog", "red"], [_humans((1, "dog"), (9, "cat")), _humans((2, "red"), (8, "blue"))])
    m.update(["yes"], [_humans((10, "yes"))])
    assert float(m.compute()) == pytest.approx((0.3 + 0.6 + 1.0) / 3)
    assert m.last_scores == [1.0] and VQAAccuracy.higher_is_better is True


@pytest.fixture
def vqa_files(tmp_path):
    qs = [{"question_id": 1, "image_id": 7, "question": "What animal?"},
          {"question_id": 2, "image_id": 7, "question": "Is it red?"},
          {"question_id": 3, "image_id": 8, "question": "How many?"}]
    anns = [{"question_id": 1, "image_id": 7, "question_type": "what", "answer_type": "other",
             "answers": [{"answer": a, "answer_id": i + 1} for i, a in enumerate(_humans((2, "red"), (8, "blue")))]},
            {"question_id": 2, "image_id": 7, "question_type": "is it", "answer_type": "yes/no",
             "answers": [{"answer": "yes", "answer_id": i + 1} for i in range(10)]},
            {"question_id": 3, "image_id": 8, "question_type": "how many", "answer_type": "number",
             "answers": [{"answer": a, "answer_id": i + 1} for i, a in enumerate(_humans((5, "2"), (5, "two")))]}]
    res = [{"question_id": 2, "answer": "yes"}, {"question_id": 1, "answer": "Red"}, {"question_id": 3, "answer": "3"}]
    (tmp_path / "q.json").write_text(json.dumps({"questions": qs}))
    (tmp_path / "a.json").write_text(json.dumps({"annotations": anns}))
    (tmp_path / "r.json").write_text(json.dumps(res))
    return tmp_path


def test_score_vqa_cli(vqa_files, capsys):
    d = vqa_files
    assert main(["score", "vqa", "--questions", str(d / "q.json"), "--annotations", str(d / "a.json"),
                 "--predictions", str(d / "r.json"), "--per-question"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["overall"] == pytest.approx((0.6 + 1.0 + 0.0) / 3)
    assert out["per_answer_type"] == pytest.approx({"other": 0.6, "yes/no": 1.0, "number": 0.0})
    assert out["per_question_type"]["how many"] == 0.0 and out["num_questions"] == 3
    assert [r["question_id"] for r in out["per_question"]] == [1, 2, 3]


@pytest.mark.parametrize("results, message", [
    ([{"question_id": 1, "answer": "x"}], "r.json: no answer for question_id 2 (and 1 more)"),
    ([{"question_id": 9, "answer": "x"}], "r.json: [0]: question_id 9 is not in the annotations"),
    ([{"question_id": 1, "answer": 3}], "r.json: [0] (question_id 1): 'answer' must be a string"),
    ({"question_id": 1}, "r.json: expected a JSON list"),
])
def test_score_vqa_one_line_errors(vqa_files, capsys, results, message):
    d = vqa_files
    (d / "r.json").write_text(json.dumps(results))
    rc = main(["score", "vqa", "--annotations", str(d / "a.json"), "--predictions", str(d / "r.json")])
    err = capsys.readouterr().err
    assert rc == 2 and message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_score_vqa_bad_annotations_and_no_torch(vqa_files, capsys):
    d = vqa_files
    (d / "bad.json").write_text(json.dumps({"annotations": [{"question_id": 1, "answers": []}]}))
    assert main(["score", "vqa", "--annotations", str(d / "bad.json"), "--predictions", str(d / "r.json")]) == 2
    assert "bad.json: annotations[0] (question_id 1): 'answers' must be a non-empty" in capsys.readouterr().err
    code = ("import sys\nfrom polymodal.cli import main\n"
            f"rc = main(['score', 'vqa', '--annotations', {str(d / 'a.json')!r}, '--predictions', {str(d / 'r.json')!r}])\n"
            "print('HEAVY=' + ','.join(m for m in ('torch', 'numpy') if m in sys.modules), rc)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "HEAVY= 0"
