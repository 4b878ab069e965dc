"""Folders of audio or video clips: ``root[/split]/<class>/<clip>`` or a flat folder.

With class sub-folders each clip gets a ``label``; a flat folder has no
targets. A ``<clip>.txt`` next to a clip becomes its ``text`` (a caption).
Video clips are video files (``.mp4``/``.webm``/``.mkv``/``.avi``/``.mov``),
animated GIF/WebP, ``.npy`` arrays, or folders of frames. ``audio_track=true``
also reads each video file's audio track as the sample's ``audio`` field
(audio-visual samples; a clip without a track is an error naming the file).
"""

from __future__ import annotations

import os
from pathlib import Path

from polymodal.errors import DataError
from polymodal.data import resolve_inside
from polymodal_plugins.datasets.files import AUDIO_SUFFIXES, VIDEO_SUFFIXES, FileDataset, Record


class ClipFolder(FileDataset):
    """Audio (WAV/FLAC/OGG) or video clips, optionally with classes and captions."""

    name = "clip-folder"

    def __init__(self, root: str | os.PathLike[str], split: str | None = None, modality: str = "audio",
                 on_error: str = "raise", audio_track: bool = False) -> None:
        if modality not in ("audio", "video"):
            raise DataError(f"dataset {self.name!r}: modality must be 'audio' or 'video', got {modality!r}")
        if audio_track and modality != "video":
            raise DataError(f"dataset {self.name!r}: audio_track=true reads video files' sound; it needs modality='video'")
        super().__init__(root, on_error)
        base = resolve_inside(self.root, split, what=f"dataset {self.name!r}") if split else self.root
        if not base.is_dir():
            raise DataError(f"dataset {self.name!r}: folder {str(base)!r} does not exist")
        self.split = split
        self.fields = {modality: modality, **({"audio": "audio"} if audio_track else {})}
        self.targets = []
        classes = sorted(d.name for d in base.iterdir() if d.is_dir() and not d.name.startswith(".")
                         and not (modality == "video" and self._is_clip(d, modality)))
        groups = [(i, base / c) for i, c in enumerate(classes)] if classes else [(None, base)]
        if classes:
            self.class_names = {"label": classes}
            self.num_classes = {"label": len(classes)}
            self.targets = ["label"]
        has_text = False
        for label, folder in groups:
            for f in sorted(folder.iterdir()):
                if not self._is_clip(f, modality):
                    continue
                rel = os.path.relpath(f, self.root)
                values: dict[str, object] = {modality: rel, **({"audio": rel} if audio_track else {})}
                caption = f.with_suffix(".txt") if f.is_file() else f.with_name(f.name + ".txt")
                if caption.is_file():
                    values["text"] = {"path": os.path.relpath(caption, self.root)}
                    has_text = True
                self.records.append(Record(id=rel, values=values, targets={} if label is None else {"label": label}))
        if not self.records:
            raise DataError(f"dataset {self.name!r}: no {modality} clips under {base}")
        if has_text:
            self.fields = {**self.fields, "text": "text"}
        self._finalise()

    @staticmethod
    def _is_clip(path: Path, modality: str) -> bool:
        if modality == "audio":
            return path.is_file() and path.suffix.lower() in AUDIO_SUFFIXES
        if path.is_dir():  # a folder of frames: it contains images and no sub-folders
            return any(p.suffix.lower() in (".png", ".jpg", ".jpeg") for p in path.iterdir())
        return path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES
