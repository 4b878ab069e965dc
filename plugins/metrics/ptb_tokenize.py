"""PTB-style caption tokenisation as coco-caption does it, without Java.

coco-caption runs Stanford CoreNLP 3.4.1's ``PTBTokenizer -preserveLines
-lowerCase`` and then drops the punctuation tokens in :data:`PUNCTUATION`.
Users compare our scores with numbers produced that way, so the same tokens
must come out. This module re-implements the rules that matter for captions:

* lower case; quotes become ````` / ``''`` (and single ```/``'``);
* brackets become ``-lrb-``/``-rrb-``/``-lsb-``... (note: coco-caption's
  punctuation list holds the *upper case* ``-LRB-`` while the tokenizer was
  asked for lower case, so ``-lrb-`` tokens survive; we reproduce that);
* clitics split off: ``'s 're 've 'll 'd 'm n't`` and ``can not``/``gon na``;
* numbers keep their internal ``. , : /`` and hyphenated words stay whole;
  abbreviations with internal periods (``u.s.``, ``a.m.``) and common titles
  (``mr.``, ``dr.``, ``st.``) keep their period;
* runs like ``...``, ``!!!``, ``--`` stay one token; Unicode dashes become
  ``--`` and the ellipsis character ``...``.

It was checked token for token against the Java tokenizer on the sentences in
``tests/test_metrics_caption.py`` (edge cases: non-ASCII, numbers,
punctuation only, clitics, brackets, quotes).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

#: Tokens removed after tokenising (coco-caption's list, verbatim).
PUNCTUATION: frozenset[str] = frozenset(
    ["''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-", ".", "?", "!", ",", ":", "-", "--", "...", ";"]
)

# Titles and short forms the Java lexer keeps with their period.
_ABBREVIATIONS = (
    "mr|mrs|ms|dr|st|jr|sr|prof|gen|col|lt|sgt|capt|rev|gov|sen|rep|mt|ft|ave|blvd|co|corp|inc|ltd|bros|"
    "jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec|vs|etc|no|vol|fig|approx|dept|est|univ"
)
_CHAR_MAP = {
    "\u201c": " `` ", "\u201d": " '' ", "\u00ab": " `` ", "\u00bb": " '' ", "\u201e": " `` ",
    "\u2018": "`", "\u2019": "'", "\u201a": "'", "\u2032": "'",
    "\u2013": " -- ", "\u2014": " -- ", "\u2015": " -- ",
    "\u2026": " ... ", "\u00a0": " ", "\t": " ", "\r": " ", "\n": " ",
}
_BRACKETS = {"(": "-lrb-", ")": "-rrb-", "[": "-lsb-", "]": "-rsb-", "{": "-lcb-", "}": "-rcb-"}
_CLITIC = r"(?:'s|'re|'ve|'ll|'d|'m|n't)"

_TOKEN = re.compile(
    r"""
    (?P<dq>``|'')
  | (?P<quote>")
  | (?P<abbr>(?:[^\W\d_]\.){2,}|(?:""" + _ABBREVIATIONS + r""")\.(?=\s|$|[,;:!?)\]}"']))
  | (?P<number>[+-]?\d+(?:[.,:]\d+)+(?![\d-])|(?<![\w])[+-]\d+(?:[.,]\d+)*(?![\w-]))
  | (?P<word>[\w#@<>](?:[\w#@<>&]|[-/.](?=[\w#@<>])|'(?=[\w])(?!"""
    + r"""(?:s|re|ve|ll|d|m)\b))*?(?=""" + _CLITIC + r"""(?![\w])|n't\b|[^\w#@<>&\-/.']|[-/.'](?![\w#@<>])|$))
  | (?P<clitic>""" + _CLITIC + r""")
  | (?P<dots>\.{2,})
  | (?P<dashes>-{2,})
  | (?P<bang>[!?]+)
  | (?P<single>'|`)
  | (?P<other>\S)
    """,
    re.VERBOSE | re.UNICODE,
)
_SPLIT_WORDS = {"cannot": ("can", "not"), "gonna": ("gon", "na"), "wanna": ("wan", "na"), "gotta": ("got", "ta"),
                "'tis": ("'t", "is"), "'twas": ("'t", "was")}


def ptb_tokens(text: str) -> list[str]:
    """All PTB tokens of ``text``, lower-cased, punctuation included."""
    for char, repl in _CHAR_MAP.items():
        if char in text:
            text = text.replace(char, repl)
    text = text.lower()
    out: list[str] = []
    for m in _TOKEN.finditer(text):
        kind = m.lastgroup
        tok = m.group()
        if kind == "quote":
            start = m.start()
            opening = start == 0 or text[start - 1].isspace() or text[start - 1] in "([{<`"
            out.append("``" if opening else "''")
        elif kind == "single":
            start = m.start()
            if tok == "'" and (start == 0 or text[start - 1].isspace() or text[start - 1] in "([{"):
                nxt = text[start + 1 : start + 2]
                out.append("`" if nxt and not nxt.isspace() else "'")
            else:
                out.append(tok)
        elif kind == "other" and tok in _BRACKETS:
            out.append(_BRACKETS[tok])
        elif kind == "word" and tok in _SPLIT_WORDS:
            out.extend(_SPLIT_WORDS[tok])
        else:
            out.append(tok)
    return out


def tokenize_caption(text: str) -> str:
    """One caption as coco-caption scores it: PTB tokens minus punctuation, space-joined."""
    return " ".join(t for t in ptb_tokens(text) if t not in PUNCTUATION)


def tokenize_captions(texts: Iterable[str]) -> list[str]:
    """:func:`tokenize_caption` over many captions."""
    return [tokenize_caption(t) for t in texts]
