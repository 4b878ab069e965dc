"""Small, fast stand-ins for modalities, encoders and a dataset, for model and training tests.

The encoders are real (trainable) networks, only tiny; the data is a
learnable synthetic task: the class decides an image's colour and a
sentence's words, with noise, so a model that trains correctly reaches high
accuracy in a few dozen steps and one that does not stays at chance.
"""

from __future__ import annotations

import torch
from torch import nn

from polymodal import components
from polymodal.batch import Batch, Features, ModalityBatch
from polymodal.experiment import DataConfig, ExperimentConfig, experiment_from_dict
from polymodal.model_api import FieldInfo, ModelContext, TargetInfo
from polymodal.plugins import PluginSettings, build_plugin_manager

NUM_CLASSES = 4
VOCAB = 16
SEQ = 5
IMG = 8


class TinyImageEncoder(nn.Module):
    """Conv -> one token per 2x2 patch."""

    def __init__(self, dim: int = 16, channels: int = 3):
        super().__init__()
        self.conv = nn.Conv2d(channels, dim, 2, stride=2)
        self.output_dim = dim

    def forward(self, mb: ModalityBatch) -> Features:
        x = self.conv(mb.data).flatten(2).transpose(1, 2)  # [B, T, D]
        mask = mb.present.unsqueeze(1).expand(-1, x.shape[1])
        return Features(x, mask)


class TinyTextEncoder(nn.Module):
    """Token embedding + a position-wise layer; ``vocab_size`` comes from the modality."""

    def __init__(self, vocab_size: int, dim: int = 16, dropout: float = 0.0):
        super().__init__()
        self.emb = nn.Embedding(vocab_size, dim, padding_idx=0)
        self.mix = nn.Sequential(nn.Dropout(dropout), nn.Linear(dim, dim), nn.GELU())
        self.output_dim = dim

    def forward(self, mb: ModalityBatch) -> Features:
        return Features(self.mix(self.emb(mb.data)), mb.mask)


kit = components(
    ("encoders", "tiny-image", TinyImageEncoder, {}),
    ("encoders", "tiny-text", TinyTextEncoder, {}),
)


def plugins():
    """A manager with the installed plugins (fusions, models) plus the tiny encoders."""
    return build_plugin_manager(PluginSettings(), entry_points=True, extra_plugins={"testkit": kit})


def context(pm, fields=("image", "text", "text_zh")) -> ModelContext:
    infos = {
        "image": FieldInfo("image", "image", {"channels": 3, "size": IMG}),
        "text": FieldInfo("text", "text", {"vocab_size": VOCAB, "pad_id": 0}),
        "text_zh": FieldInfo("text_zh", "text", {"vocab_size": VOCAB, "pad_id": 0}),
    }
    return ModelContext(pm, {f: infos[f] for f in fields},
                        {"label": TargetInfo("label", NUM_CLASSES, [f"c{i}" for i in range(NUM_CLASSES)])},
                        source="test.toml")


def sample(i: int, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed * 100_003 + i)
    label = int(torch.randint(NUM_CLASSES, (1,), generator=g))
    img = torch.rand(3, IMG, IMG, generator=g) * 0.5
    img[label % 3] += 0.4 if label < 3 else 0.0
    if label == 3:
        img += 0.45
    words = torch.randint(5, VOCAB, (SEQ,), generator=g)
    words[0] = 1 + label  # the class word (ids 1..4)
    zh = words.flip(0).clone()
    return {"id": f"s{i}", "image": img.clamp(0, 1), "text": words, "text_zh": zh, "label": label}


def collate(items: list[dict]) -> Batch:
    inputs = {
        "image": ModalityBatch(torch.stack([it["image"] for it in items]), torch.ones(len(items), dtype=torch.bool)),
        "text": ModalityBatch(torch.stack([it["text"] for it in items]), torch.ones(len(items), SEQ, dtype=torch.bool)),
        "text_zh": ModalityBatch(torch.stack([it["text_zh"] for it in items]),
                                 torch.ones(len(items), SEQ, dtype=torch.bool)),
    }
    return Batch(inputs, {"label": torch.tensor([it["label"] for it in items])}, [it["id"] for it in items])


def dataset(n: int, seed: int = 0) -> list[dict]:
    return [sample(i, seed) for i in range(n)]


def batch(n: int = 8, seed: int = 0) -> Batch:
    return collate(dataset(n, seed))


def experiment(model: dict | None = None, train: dict | None = None, data: dict | None = None) -> ExperimentConfig:
    model = model or {}
    m = {"name": "fusion-classifier", "fusion": "concat",
         "encoders": {"image": {"name": "tiny-image"}, "text": {"name": "tiny-text"}}, **model}
    return experiment_from_dict({"data": {"dataset": "toy", "batch_size": 16, **(data or {})}, "model": m,
                                 "train": {"epochs": 2, **(train or {})}}, "test.toml")


def data_config(cfg: ExperimentConfig) -> DataConfig:
    return cfg.data
