"""VQA accuracy against the official VQAv2 evaluation script, on random hard cases.

    python tests/benchmarks/bench_vqa_official.py --official path/to/vqaEval.py [--questions 20000]

``--official`` is ``PythonEvaluationTools/vqaEvaluation/vqaEval.py`` from
GT-Vision-Lab/VQA (a Python 2 file: its two ``print`` statements are dropped
when it is loaded; nothing else changes). Random questions mix case, number
words, articles, contractions, punctuation next to and away from spaces,
digit-comma-digit groups, periods, tabs and newlines, with one to four
distinct human answers. Printed: per-question mismatches (official rounding,
two decimals of a percentage), overall and per-answer-type accuracy of both,
and the time each took; the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import json
import random
import time
from pathlib import Path

ATOMS = ["yes", "Yes", "no", "2", "two", "the", "a", "dog", "Dog.", "1,000", "1000", "dont", "don't", "red,",
         "white", "3.5", "none", "0", "cat!", "?", "(cat)", "ten", "10", "x.y.z", "-", "/", "it's", "its", "whats",
         "...", "3,5", '"hi"', "@", " ", "\n", "\t"]


class _Store:
    def __init__(self, qa):
        self.qa = qa

    def getQuesIds(self):  # noqa: N802 - the official script's name
        return list(self.qa)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--official", required=True, type=Path)
    ap.add_argument("--questions", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    from polymodal_plugins.metrics.vqa_scores import summarize, vqa_accuracy

    source = args.official.read_text().replace('print "computing accuracy"', "").replace(
        'print "Done computing accuracy"', "")
    namespace: dict = {}
    exec(compile(source, str(args.official), "exec"), namespace)  # noqa: S102 - the user's own reference file
    rng = random.Random(args.seed)

    def make() -> str:
        return "".join(rng.choice(ATOMS) + rng.choice(["", " ", ""]) for _ in range(rng.randint(1, 4)))

    gts, res = {}, {}
    for q in range(args.questions):
        pool = [make() for _ in range(rng.choice([1, 2, 3, 4]))]
        gts[q] = {"answers": [{"answer": rng.choice(pool), "answer_id": i + 1} for i in range(10)],
                  "question_type": "what", "answer_type": rng.choice(["other", "number", "yes/no"])}
        res[q] = {"answer": rng.choice([*pool, make()])}
    t0 = time.perf_counter()
    ours = [vqa_accuracy(res[q]["answer"], [a["answer"] for a in gts[q]["answers"]]) for q in gts]
    summary = summarize(ours, [gts[q]["answer_type"] for q in gts])
    t_ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        ev = namespace["VQAEval"](_Store(copy.deepcopy(gts)), _Store(res), n=2)
        ev.evaluate()
    t_ref = time.perf_counter() - t0
    mismatches = sum(round(100 * ours[q], 2) != ev.evalQA[q] for q in gts)
    per_type_equal = all(round(100 * v, 2) == ev.accuracy["perAnswerType"][k]
                         for k, v in summary["per_answer_type"].items())
    print(f"questions {len(gts)}  mismatches {mismatches}  per-answer-type equal {per_type_equal}")
    print(f"overall: ours {100 * summary['overall']:.2f}  official {ev.accuracy['overall']:.2f}")
    print(f"seconds: ours {t_ours:.2f}  official {t_ref:.2f}  ratio {t_ours / t_ref:.2f}")
    print(json.dumps({"bench": "vqa_official", "questions": len(gts), "mismatches": mismatches,
                      "per_answer_type_equal": per_type_equal, "ours_overall": summary["overall"],
                      "official_overall": ev.accuracy["overall"] / 100, "ours_s": t_ours, "official_s": t_ref}))


if __name__ == "__main__":
    main()
