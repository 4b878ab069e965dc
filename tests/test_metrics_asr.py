"""WER / CER: equal to jiwer (corpus-level, with and without normalisation), batch- and
process-additive, and ``polymodal score wer|cer`` on JSONL that never imports torch."""

from __future__ import annotations

import json
import random
import subprocess
import sys

import jiwer
import pytest

from polymodal.cli import main
from polymodal_plugins.metrics.asr import CharErrorRate, WordErrorRate
from polymodal_plugins.metrics.error_rates import Normalization, error_rate

REFERENCES = [
    "the quick brown fox jumps over the lazy dog",
    "Hello, World!  how are you?",
    "  leading and trailing spaces  ",
    "tabs\tand\nnew lines count  too",
    "naïve café — «quoted» words…",
    "one",
    "It's a dog's life; isn't it?",
    "numbers 1 2 3 and symbols $ % &",
]
PREDICTIONS = [
    "the quick brown fox jumped over a lazy dog",
    "hello world how are you",
    "leading and trailing space",
    "tabs and new lines count",
    "naive cafe quoted words",
    "",
    "its a dogs life isnt it",
    "numbers one two 3 and symbols $ %",
]

NORMALIZE = jiwer.Compose([jiwer.ToLowerCase(), jiwer.RemovePunctuation(), jiwer.RemoveWhiteSpace(replace_by_space=True),
                           jiwer.RemoveMultipleSpaces(), jiwer.Strip()])
JIWER_WORDS = jiwer.Compose([NORMALIZE, jiwer.ReduceToListOfListOfWords()])
JIWER_CHARS = jiwer.Compose([NORMALIZE, jiwer.ReduceToListOfListOfChars()])


def _random_corpus(seed: int, n: int = 40) -> tuple[list[str], list[str]]:
    rng = random.Random(seed)
    vocab = ["a", "b", "c", "Dog", "dog.", "cat,", "the", "é", "?", "  ", "\t", "x-y"]
    make = lambda: " ".join(rng.choice(vocab) for _ in range(rng.randint(1, 12)))  # noqa: E731
    return [make() for _ in range(n)], [make() if rng.random() > 0.1 else "" for _ in range(n)]


@pytest.mark.parametrize("seed", [None, 0, 1])
def test_equal_to_jiwer_with_and_without_normalisation(seed):
    refs, preds = (REFERENCES, PREDICTIONS) if seed is None else _random_corpus(seed)
    assert abs(error_rate(refs, preds, "wer") - jiwer.wer(refs, preds)) < 1e-12
    assert abs(error_rate(refs, preds, "cer") - jiwer.cer(refs, preds)) < 1e-12
    norm = Normalization.standard()
    want_w = jiwer.wer(refs, preds, reference_transform=JIWER_WORDS, hypothesis_transform=JIWER_WORDS)
    want_c = jiwer.cer(refs, preds, reference_transform=JIWER_CHARS, hypothesis_transform=JIWER_CHARS)
    assert abs(error_rate(refs, preds, "wer", norm) - want_w) < 1e-12
    assert abs(error_rate(refs, preds, "cer", norm) - want_c) < 1e-12
    # each option on its own is jiwer's matching transform
    lower = jiwer.Compose([jiwer.ToLowerCase(), jiwer.RemoveMultipleSpaces(), jiwer.Strip(), jiwer.ReduceToListOfListOfWords()])
    assert abs(error_rate(refs, preds, "wer", Normalization(lowercase=True))
               - jiwer.wer(refs, preds, reference_transform=lower, hypothesis_transform=lower)) < 1e-12


def test_metric_classes_add_up_over_batches_and_equal_jiwer():
    refs, preds = _random_corpus(7, 60)
    for cls, ref_fn in ((WordErrorRate, jiwer.wer), (CharErrorRate, jiwer.cer)):
        m = cls()
        for lo, hi in ((0, 13), (13, 14), (14, 60)):
            m.update(preds[lo:hi], refs[lo:hi])
        assert abs(float(m.compute()) - ref_fn(refs, preds)) < 1e-12
        assert cls.higher_is_better is False
    # the corpus rate is not the mean of per-utterance rates
    per_utt = sum(jiwer.wer(r, p) for r, p in zip(REFERENCES[:3], PREDICTIONS[:3])) / 3
    assert abs(per_utt - jiwer.wer(REFERENCES[:3], PREDICTIONS[:3])) > 1e-3
    with pytest.raises(ValueError, match="no reference tokens"), pytest.warns(UserWarning):
        WordErrorRate().compute()


def test_states_merge_like_processes_do():
    """``merge_state`` applies each state's ``dist_reduce_fx``, as the cross-process sync does:
    two uneven shards give exactly the single-pass value (no subprocesses: spawning costs ~1 min here)."""
    shards = []
    for idx in (range(0, 5), range(5, len(REFERENCES))):
        m = WordErrorRate(normalize=True)
        m.update([PREDICTIONS[i] for i in idx], [REFERENCES[i] for i in idx])
        shards.append(m)
    shards[0].merge_state(shards[1])
    want = jiwer.wer(REFERENCES, PREDICTIONS, reference_transform=JIWER_WORDS, hypothesis_transform=JIWER_WORDS)
    assert abs(float(shards[0].compute()) - want) < 1e-12


def _write_jsonl(path, ids, texts):
    path.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in zip(ids, texts)), encoding="utf-8")


@pytest.fixture()
def transcripts(tmp_path):
    ids = [f"utt{i}" for i in range(len(REFERENCES))]
    _write_jsonl(tmp_path / "ref.jsonl", ids, REFERENCES)
    order = list(range(len(ids)))
    random.Random(3).shuffle(order)  # ids in any order
    _write_jsonl(tmp_path / "hyp.jsonl", [ids[i] for i in order], [PREDICTIONS[i] for i in order])
    return tmp_path


@pytest.mark.parametrize("kind, normalize", [("wer", False), ("cer", False), ("wer", True), ("cer", True)])
def test_score_wer_cer_cli_equals_jiwer(transcripts, capsys, kind, normalize):
    d = transcripts
    argv = ["score", kind, "--references", str(d / "ref.jsonl"), "--predictions", str(d / "hyp.jsonl"),
            "--output", str(d / "out.json")] + ["--normalize"] * normalize
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert out == json.loads((d / "out.json").read_text())
    fn = jiwer.wer if kind == "wer" else jiwer.cer
    kw = {} if not normalize else dict(reference_transform=JIWER_WORDS if kind == "wer" else JIWER_CHARS,
                                       hypothesis_transform=JIWER_WORDS if kind == "wer" else JIWER_CHARS)
    assert abs(out[kind] - fn(REFERENCES, PREDICTIONS, **kw)) < 1e-12
    assert out["num_utterances"] == len(REFERENCES) and out["normalized"] is normalize


@pytest.mark.parametrize("ref_lines, hyp_lines, message", [
    (['{"id": "a", "text": "x"}'], ['{"id": "b", "text": "x"}'], "hyp.jsonl: id 'b' has no reference in"),
    (['{"id": "a", "text": "x"}', '{"id": "b", "text": "y"}'], ['{"id": "a", "text": "x"}'],
     "hyp.jsonl: no prediction for id 'b'"),
    (['{"id": "a", "text": "x"}', '{"id": "a", "text": "y"}'], ['{"id": "a", "text": "x"}'],
     "ref.jsonl: line 2: duplicate id 'a'"),
    (['{"id": "a", "text": "x"}'], ['{"id": "a"'], "hyp.jsonl: line 1: invalid JSON"),
    (['{"id": "a", "txt": "x"}'], ['{"id": "a", "text": "x"}'], "ref.jsonl: line 1: expected an object with 'id' and 'text'"),
    (['{"id": "a", "text": 3}'], ['{"id": "a", "text": "x"}'], "ref.jsonl: line 1: 'text' must be a string"),
    (['{"id": "a", "text": " ! "}'], ['{"id": "a", "text": "x"}'], "every reference is empty after normalisation"),
])
def test_score_wer_malformed_inputs_one_line_errors(tmp_path, capsys, ref_lines, hyp_lines, message):
    (tmp_path / "ref.jsonl").write_text("\n".join(ref_lines) + "\n", encoding="utf-8")
    (tmp_path / "hyp.jsonl").write_text("\n".join(hyp_lines) + "\n", encoding="utf-8")
    rc = main(["score", "wer", "--references", str(tmp_path / "ref.jsonl"), "--predictions",
               str(tmp_path / "hyp.jsonl"), "--normalize"])
    assert rc == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_score_wer_never_imports_torch_or_numpy(transcripts):
    d = transcripts
    code = ("import sys\nfrom polymodal.cli import main\n"
            f"rc = main(['score', 'wer', '--references', {str(d / 'ref.jsonl')!r}, '--predictions', "
            f"{str(d / 'hyp.jsonl')!r}, '--normalize'])\n"
            "print('HEAVY=' + ','.join(m for m in ('torch', 'numpy') if m in sys.modules), rc)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "HEAVY= 0"
