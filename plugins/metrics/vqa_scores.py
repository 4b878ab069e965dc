"""VQA accuracy exactly as the official VQAv2 evaluation (GT-Vision-Lab/VQA, ``vqaEval.py``).

Torch- and numpy-free: ``polymodal score vqa`` and the in-run metric both call
:func:`vqa_accuracy`, so offline and in-run numbers are the same.

The official rules, restated (they matter for exact equality):

* every answer (prediction and the ten human answers) has newlines and tabs
  turned into spaces and is stripped;
* **normalisation is applied only when the humans disagree** (more than one
  distinct stripped answer). When all ten agree, the prediction is compared
  with them verbatim (case and punctuation included);
* normalisation = punctuation then digits/articles/contractions:
  each punctuation mark in :data:`PUNCTUATION` is deleted when it touches a
  space in the original text, or when the text holds a digit-comma-digit
  group; otherwise it becomes a space. Then a period not followed by a digit
  is deleted (the official call passes ``re.UNICODE`` as the *count*, so at
  most 32 periods go; we keep that). Then lower-case, split on whitespace,
  number words zero..ten and "none" become digits, articles are dropped and
  apostrophe-less contractions get their apostrophes back;
* accuracy of one question = the mean over the ten leave-one-human-out
  subsets of ``min(#humans in the subset who gave the answer / 3, 1)``.

Results are fractions in [0, 1] (the official script prints percentages
rounded to two decimals).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

PUNCTUATION = (";", "/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-",
               ">", "<", "@", "`", ",", "?", "!")
ARTICLES = frozenset({"a", "an", "the"})
NUMBER_WORDS = {"none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
                "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10"}

# Spelling without apostrophes -> the official table's target. Kept as data, one
# "key value" pair per entry; the table has its quirks (e.g. "somebody'd" maps
# to "somebodyd", mixed-case keys that can never match after lower-casing), and
# exact equality with the official numbers means keeping them.
_CONTRACTION_PAIRS = """
aint ain't|arent aren't|cant can't|couldve could've|couldnt couldn't|couldn'tve couldn't've|couldnt've couldn't've
didnt didn't|doesnt doesn't|dont don't|hadnt hadn't|hadnt've hadn't've|hadn'tve hadn't've|hasnt hasn't
havent haven't|hed he'd|hed've he'd've|he'dve he'd've|hes he's|howd how'd|howll how'll|hows how's
Id've I'd've|I'dve I'd've|Im I'm|Ive I've|isnt isn't|itd it'd|itd've it'd've|it'dve it'd've|itll it'll
let's let's|maam ma'am|mightnt mightn't|mightnt've mightn't've|mightn'tve mightn't've|mightve might've
mustnt mustn't|mustve must've|neednt needn't|notve not've|oclock o'clock|oughtnt oughtn't
ow's'at 'ow's'at|'ows'at 'ow's'at|'ow'sat 'ow's'at|shant shan't|shed've she'd've|she'dve she'd've
she's she's|shouldve should've|shouldnt shouldn't|shouldnt've shouldn't've|shouldn'tve shouldn't've
somebody'd somebodyd|somebodyd've somebody'd've|somebody'dve somebody'd've|somebodyll somebody'll
somebodys somebody's|someoned someone'd|someoned've someone'd've|someone'dve someone'd've
someonell someone'll|someones someone's|somethingd something'd|somethingd've something'd've
something'dve something'd've|somethingll something'll|thats that's|thered there'd|thered've there'd've
there'dve there'd've|therere there're|theres there's|theyd they'd|theyd've they'd've
they'dve they'd've|theyll they'll|theyre they're|theyve they've|twas 'twas|wasnt wasn't
wed've we'd've|we'dve we'd've|weve we've|werent weren't|whatll what'll|whatre what're
whats what's|whatve what've|whens when's|whered where'd|wheres where's|whereve where've
whod who'd|whod've who'd've|who'dve who'd've|wholl who'll|whos who's|whove who've|whyll why'll
whyre why're|whys why's|wont won't|wouldve would've|wouldnt wouldn't|wouldnt've wouldn't've
wouldn'tve wouldn't've|yall y'all|yall'll y'all'll|y'allll y'all'll|yall'd've y'all'd've
y'alld've y'all'd've|y'all'dve y'all'd've|youd you'd|youd've you'd've|you'dve you'd've
youll you'll|youre you're|youve you've
"""
CONTRACTIONS = dict(pair.split(" ") for pair in _CONTRACTION_PAIRS.replace("\n", "|").split("|") if pair)

_DIGIT_COMMA_DIGIT = re.compile(r"\d,\d")
_PERIOD_NOT_BEFORE_DIGIT = re.compile(r"\.(?!\d)")
_OFFICIAL_PERIOD_LIMIT = 32  # re.UNICODE passed as ``count`` in the official script


def clean_whitespace(text: str) -> str:
    """Newlines and tabs to spaces, then strip: applied to every answer, always."""
    return text.replace("\n", " ").replace("\t", " ").strip()


def strip_punctuation(text: str) -> str:
    """The official punctuation step (see the module docstring)."""
    delete_all = _DIGIT_COMMA_DIGIT.search(text) is not None
    out = text
    for mark in PUNCTUATION:
        touches_space = (mark + " ") in text or (" " + mark) in text
        out = out.replace(mark, "" if (touches_space or delete_all) else " ")
    return _PERIOD_NOT_BEFORE_DIGIT.sub("", out, count=_OFFICIAL_PERIOD_LIMIT)


def normalize_digits_articles(text: str) -> str:
    """Lower-case; number words to digits; drop articles; restore contractions."""
    words = [NUMBER_WORDS.get(w, w) for w in text.lower().split()]
    return " ".join(CONTRACTIONS.get(w, w) for w in words if w not in ARTICLES)


def normalize_answer(text: str) -> str:
    """The full official normalisation of one answer (whitespace, punctuation, digits/articles)."""
    return normalize_digits_articles(strip_punctuation(clean_whitespace(text)))


def vqa_accuracy(prediction: str, human_answers: Sequence[str]) -> float:
    """Accuracy of one predicted answer against the human answers (usually ten), in [0, 1]."""
    if not human_answers:
        raise ValueError("a VQA question needs at least one human answer")
    humans = [clean_whitespace(a) for a in human_answers]
    pred = clean_whitespace(prediction)
    if len(set(humans)) > 1:  # the official script normalises only when the humans disagree
        humans = [normalize_digits_articles(strip_punctuation(a)) for a in humans]
        pred = normalize_digits_articles(strip_punctuation(pred))
    matches = sum(a == pred for a in humans)
    # leave human i out: the others who match are ``matches`` minus i's own match
    total = sum(min(1.0, (matches - (a == pred)) / 3.0) for a in humans)
    return total / len(humans)


def summarize(accuracies: Sequence[float], answer_types: Sequence[str],
              question_types: Sequence[str] | None = None) -> dict:
    """Overall and per-answer-type (and per-question-type) mean accuracy, fractions in [0, 1]."""
    if not accuracies:
        raise ValueError("no questions to score")

    def means(keys: Sequence[str]) -> dict[str, float]:
        groups: dict[str, list[float]] = {}
        for k, a in zip(keys, accuracies):
            groups.setdefault(k, []).append(a)
        return {k: sum(v) / len(v) for k, v in sorted(groups.items())}

    out = {"overall": sum(accuracies) / len(accuracies), "per_answer_type": means(answer_types),
           "num_questions": len(accuracies)}
    if question_types is not None:
        out["per_question_type"] = means(question_types)
    return out
