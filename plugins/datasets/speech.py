"""Speech corpora for recognition: a manifest of audio + transcript, or the LibriSpeech layout.

Each sample is ``{"id", "audio", "text"}``: the audio file (read by the audio
modality) and its reference transcript (an inline string, which is what the
task and noise axes score WER against).

``layout = "librispeech"``: ``root[/split]/<speaker>/<chapter>/`` folders with
``<speaker>-<chapter>.trans.txt`` (one ``<utterance-id> <TRANSCRIPT>`` per
line) next to ``<utterance-id>.flac`` (or ``.wav``). ``layout = "manifest"``:
a JSONL (NeMo style, ``{"audio_filepath", "text", "duration"}``, or
``{"audio", "text"}``) or CSV file; a ``split`` column selects rows.
``layout = "auto"`` picks LibriSpeech when a ``*.trans.txt`` exists under the
folder, else the manifest. Every problem names the file and line.
"""

from __future__ import annotations

import os
from pathlib import Path

from polymodal.errors import DataError
from polymodal.data import resolve_inside
from polymodal_plugins.datasets.files import AUDIO_SUFFIXES, FileDataset, Record
from polymodal_plugins.datasets.manifest import Manifest

LAYOUTS = ("auto", "librispeech", "manifest")
AUDIO_COLUMNS = ("audio_filepath", "audio", "path", "file")


class SpeechDataset(FileDataset):
    """Audio clips with reference transcripts (see the module docstring)."""

    name = "speech"

    def __init__(self, root: str | os.PathLike[str], split: str | None = None, layout: str = "auto",
                 manifest: str = "manifest.jsonl", on_error: str = "raise") -> None:
        if layout not in LAYOUTS:
            raise DataError(f"dataset {self.name!r}: layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
        super().__init__(root, on_error)
        self.fields = {"audio": "audio", "text": "text"}
        self.targets = []
        base = self.root
        self.split = None  # set below when the data really has the split asked for
        if split and (self.root / split).is_dir():
            base = resolve_inside(self.root, split, what=f"dataset {self.name!r}")
            self.split = split
        if layout == "auto":
            layout = "librispeech" if next(base.rglob("*.trans.txt"), None) is not None else "manifest"
        if layout == "librispeech":
            self._librispeech(base)
        else:
            self._manifest(manifest, split)
        if not self.records:
            raise DataError(f"dataset {self.name!r}: no utterances under {base}")
        self._finalise()

    def _librispeech(self, base: Path) -> None:
        for trans in sorted(base.rglob("*.trans.txt")):
            try:
                lines = trans.read_text(encoding="utf-8").splitlines()
            except (OSError, UnicodeDecodeError) as exc:
                raise DataError(f"dataset {self.name!r}: {trans}: cannot read: {exc}") from None
            for n, line in enumerate(lines, 1):
                if not line.strip():
                    continue
                utt, _, text = line.strip().partition(" ")
                if not text.strip():
                    raise DataError(f"dataset {self.name!r}: {trans}, line {n}: expected '<utterance-id> <transcript>'")
                audio = next((trans.parent / f"{utt}{s}" for s in AUDIO_SUFFIXES
                              if (trans.parent / f"{utt}{s}").is_file()), None)
                if audio is None:
                    raise DataError(f"dataset {self.name!r}: {trans}, line {n}: no audio file {utt}.flac/.wav/.ogg "
                                    f"next to it")
                self.records.append(Record(id=utt, values={"audio": os.path.relpath(audio, self.root),
                                                           "text": text.strip()}))

    def _manifest(self, manifest: str, split: str | None) -> None:
        file = resolve_inside(self.root, manifest, what=f"dataset {self.name!r}")
        rows = Manifest._read(self, file)  # the manifest reader's JSONL/CSV parsing and its errors
        if split is not None and any("split" in row for row in rows.values()):
            self.split = split
        for n, row in rows.items():
            if split is not None and "split" in row and row["split"] != split:
                continue
            column = next((c for c in AUDIO_COLUMNS if row.get(c)), None)
            text = row.get("text")
            if column is None or not isinstance(text, str):
                raise DataError(f"dataset {self.name!r}: {file}, line {n}: expected an audio path "
                                f"({' or '.join(AUDIO_COLUMNS)}) and a 'text' transcript")
            self.records.append(Record(id=row.get("id", Path(str(row[column])).stem),
                                       values={"audio": str(row[column]), "text": text}))
