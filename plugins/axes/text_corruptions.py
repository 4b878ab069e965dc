"""Text corruptions on raw captions and questions: typos, word dropout, word shuffle, paraphrase templates.

Words are whitespace-separated tokens; text written without spaces (Chinese,
Japanese) is treated character by character so the corruptions still act.
"""

from __future__ import annotations

import string

import numpy as np

from polymodal_plugins.axes.corruption import level


def _units(text: str) -> tuple[list[str], str]:
    words = text.split()
    if len(words) == 1 and len(text) > 1 and not text.isascii():
        return list(text), ""
    return words, " "


def typos(raw: str, severity: int, rng: np.random.Generator) -> str:
    units, sep = _units(raw)
    p = level((0.05, 0.12, 0.2, 0.32, 0.5), severity)
    draws = rng.random(len(units))
    kinds = rng.integers(0, 4, len(units))
    positions = rng.random(len(units))
    letters = rng.integers(0, 26, len(units))
    out = []
    for u, d, kind, pos, letter in zip(units, draws, kinds, positions, letters, strict=True):
        if d >= p or not u:
            out.append(u)
            continue
        i = int(pos * len(u))
        c = string.ascii_lowercase[int(letter)]
        if kind == 0 and len(u) > 1:  # swap two neighbours
            i = min(i, len(u) - 2)
            u = u[:i] + u[i + 1] + u[i] + u[i + 2:]
        elif kind == 1 and len(u) > 1:  # drop a character
            u = u[:i] + u[i + 1:]
        elif kind == 2:  # insert a character
            u = u[:i] + c + u[i:]
        else:  # replace a character (never by itself)
            u = u[:i] + (c if u[i] != c else string.ascii_lowercase[(int(letter) + 1) % 26]) + u[i + 1:]
        out.append(u)
    return sep.join(out)


def word_dropout(raw: str, severity: int, rng: np.random.Generator) -> str:
    units, sep = _units(raw)
    p = level((0.1, 0.2, 0.3, 0.45, 0.6), severity)
    draws = rng.random(len(units))
    kept = [u for u, d in zip(units, draws, strict=True) if d >= p]
    if not kept:  # an empty caption is not text any more; keep the unit least likely to go
        kept = [units[int(np.argmax(draws))]]
    return sep.join(kept)


def word_shuffle(raw: str, severity: int, rng: np.random.Generator) -> str:
    units, sep = _units(raw)
    p = level((0.2, 0.4, 0.6, 0.8, 1.0), severity)
    draws = rng.random(len(units))
    chosen = np.nonzero(draws < p)[0]
    # A cyclic shift by a drawn offset moves every chosen word (a plain permutation may fix some).
    out = list(units)
    if len(chosen) > 1:
        shift = 1 + int(rng.integers(0, len(chosen) - 1))
        for src, dst in zip(chosen, np.roll(chosen, shift), strict=True):
            out[dst] = units[src]
    return sep.join(out)


#: Prompt templates per severity (1..5), ``{text}`` the original, ``{lower}`` it with a lower-case first
#: letter. Severity 1 only frames the text; higher ones bury it in more, and chattier, wording that a
#: model robust to phrasing should see through (the question itself is never changed).
PARAPHRASES: tuple[tuple[str, ...], ...] = (
    ("Question: {text}", "Q: {text}", "{text} Answer:"),
    ("Please answer the following question. {text}", "Here is a question about the image: {text}",
     "{text} Give a short answer."),
    ("Could you tell me this about the picture: {lower}", "I would like to know the following. {text}",
     "Looking at the picture you were given, {lower}"),
    ("I am curious about something in this image. {text} Reply in a few words, please.",
     "Based only on what you can see here, {lower} Keep the answer brief.",
     "A friend showed me this picture and asked: \"{text}\" What should I tell them?"),
    ("Take a careful look at every part of this image before you reply, because the details matter. "
     "Here is what I need to find out: {lower} Answer with just the key word or number, nothing else.",
     "This is for a quiz and I am not sure at all. Someone wrote the question \"{text}\" under this "
     "picture. What is the right answer?",
     "Describe nothing and do not explain; simply respond to this, which is about the photo above: {lower}"),
)


def paraphrase(raw: str, severity: int, rng: np.random.Generator) -> str:
    """The text inside one of the severity's templates, chosen by the sample's seeded draw."""
    if not raw.strip():
        return raw
    templates = PARAPHRASES[severity - 1]
    pick = int(rng.random() * len(templates))  # the same draw at every severity: the same slot, more wording
    text = raw.strip()
    return templates[pick].format(text=text, lower=text[:1].lower() + text[1:])
