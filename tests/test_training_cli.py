"""``polymodal train`` end to end on the embedded shapes dataset (tiny settings)."""

from __future__ import annotations

import json
import os

import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from polymodal.cli import main
from polymodal.checkpoint import load_model, read_meta

torch.set_num_threads(1)

EXPERIMENT = """
name = "tiny"
[data]
dataset = "shapes"
params = { num_samples = 48, image_size = 16 }
batch_size = 16
[data.modalities]
image = { size = 16 }
[model]
name = "fusion-classifier"
fusion = "concat"
[model.encoders.image]
name = "cnn"
params = { width = 4, depth = 2, output_dim = 8 }
[model.encoders.text]
name = "gru"
params = { embed_dim = 8, hidden_dim = 8, output_dim = 8 }
[train]
epochs = 2
threads = 1
"""


def test_train_command_writes_checkpoint_metrics_and_resumes(tmp_path, capsys):
    cfg = tmp_path / "exp.toml"
    cfg.write_text(EXPERIMENT)
    out = tmp_path / "run"
    assert main(["train", str(cfg), "--out", str(out), "--set", "model.fusion=weighted", "--json", "--quiet"]) == 0
    outcome = json.loads(capsys.readouterr().out)
    assert outcome["steps"] == 2 * 3 and outcome["epochs"] == 2
    assert set(outcome["metrics"]) == {"train", "val", "test"}
    meta = read_meta(out / "checkpoint")
    assert meta["experiment"]["model"]["fusion"] == "weighted"
    assert meta["extra"]["vocabularies"] == {"text": "vocab-text.json"}
    assert (out / "checkpoint" / "vocab-text.json").is_file()
    assert meta["context"]["fields"]["text"]["params"]["vocab_size"] > 10
    model = load_model(out / "checkpoint")
    assert type(model).__name__ == "FusionClassifier" and model.fusion.name == "weighted"
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert {(r["conditions"]["split"], r["conditions"]["epoch"]) for r in rows if r["metric"] == "loss"} >= {
        ("train", 1), ("train", 2), ("val", 1), ("val", 2)}

    # Training again into the same folder needs --resume; resuming a finished run adds no steps.
    assert main(["train", str(cfg), "--out", str(out), "--set", "model.fusion=weighted", "--quiet"]) == 2
    assert "--resume" in capsys.readouterr().err
    assert main(["train", str(cfg), "--out", str(out), "--set", "model.fusion=weighted", "--resume", "--json",
                 "--quiet"]) == 0
    assert json.loads(capsys.readouterr().out)["steps"] == 6
    # Extending the run continues from the checkpoint.
    assert main(["train", str(cfg), "--out", str(out), "--set", "model.fusion=weighted", "--set", "train.epochs=3",
                 "--resume", "--json", "--quiet"]) == 0
    assert json.loads(capsys.readouterr().out)["steps"] == 9


def test_train_command_config_errors_are_one_line(tmp_path, capsys):
    cfg = tmp_path / "exp.toml"
    cfg.write_text(EXPERIMENT)
    assert main(["train", str(cfg), "--out", str(tmp_path / "r"), "--set", "model.fusion=concatt"]) == 2
    err = capsys.readouterr().err
    assert "unknown fusion 'concatt'" in err and "did you mean 'concat'" in err and "Traceback" not in err
    assert main(["train", str(cfg), "--set", "model.encoders.audioo.name=cnn", "--out", str(tmp_path / "r2")]) == 2
    err = capsys.readouterr().err
    assert "model.encoders.audioo" in err and "dataset 'shapes' has no field 'audioo'" in err
    assert main(["train", str(tmp_path / "missing.toml")]) == 2
    assert "no such config file" in capsys.readouterr().err
