"""Every scored row of a quick run states its metric's direction; the leaderboard never guesses it.

The leaderboard reads only ``extra["higher_is_better"]`` (see :mod:`polymodal.leaderboard`), so a
built-in axis that forgot to record it would silently lose its best/tied marking. A trimmed quick-start
suite (every scoring axis, every model kind, one epoch, a dozen samples) checks all of them at once.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from polymodal.leaderboard import EXCLUDED_AXIS_PREFIXES, build_leaderboard

SUITE = """
name = "directions"
seeds = [0]
eval_split = "test"

[defaults.data]
dataset = "shapes"
params = { num_samples = 48, image_size = 16, frames = 2, distractors = 1 }
batch_size = 16

[defaults.train]
epochs = 1

[runs.classifier]
axes = ["task", "noise", "adversarial"]
model.name = "fusion-classifier"
model.fusion = "concat"
model.encoders.image = { name = "cnn", params = { width = 4, depth = 1, output_dim = 8 } }
model.encoders.text = { name = "gru", params = { hidden_dim = 8, output_dim = 8 } }

[runs.image-text]
axes = ["retrieval", "zero-shot", "noise"]
model.name = "dual-encoder"
model.encoders.image = { name = "cnn", params = { width = 4, depth = 1, output_dim = 8 } }
model.encoders.text = { name = "gru", params = { hidden_dim = 8, output_dim = 8 } }

[runs.captioner]
axes = ["task"]
model.name = "captioner"
data.fields = ["image", "text"]

[runs.text-to-image]
axes = ["task"]
model.name = "text-to-image"
data.fields = ["image", "text"]

[axes.task]
feature_extractor = "cnn"

[axes.zero-shot]

[axes.retrieval]
ks = [1, 5]

[axes.noise]
axis = "robustness.noise"
severities = [1, 5]
corruptions = { image = ["gaussian_noise"], text = ["word_dropout"] }

[axes.adversarial]
axis = "robustness.adversarial"
attacks = ["fgsm"]
norms = ["linf"]
epsilons = [0.03]
targets = [["image"]]
"""


@pytest.fixture(scope="module")
def rows(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    from polymodal.cli import main
    from polymodal.plugins import get_plugins

    root = tmp_path_factory.mktemp("directions")
    (root / "suite.toml").write_text(SUITE)
    try:
        code = main(["run", str(root / "suite.toml"), "--out", str(root / "out"), "--limit", "12", "--no-report",
                     "-q", "--fail-fast", "--device", "cpu"])
    finally:
        get_plugins(refresh=True)  # main() installed its own process-wide manager
    assert code == 0
    return [json.loads(line) for line in (root / "out" / "results.jsonl").read_text().splitlines() if line.strip()]


def test_every_scored_builtin_row_states_its_direction(rows: list[dict]) -> None:
    scored = [r for r in rows if not r["axis"].startswith(EXCLUDED_AXIS_PREFIXES)]
    axes = {r["axis"] for r in scored}
    assert {"task", "robustness.noise", "robustness.adversarial", "retrieval", "zero-shot"} <= axes
    missing = sorted({(r["axis"], r["metric"]) for r in scored if not isinstance(r["extra"].get("higher_is_better"),
                                                                                  bool)})
    assert not missing, f"rows without a declared direction: {missing}"


def test_declared_directions_reach_the_leaderboard(rows: list[dict]) -> None:
    from polymodal.results import ResultRow

    board = build_leaderboard([ResultRow(r["axis"], r["metric"], r["value"], run=r["run"],
                                         conditions=r["conditions"], extra=r["extra"]) for r in rows])
    directions = {c.key: c.higher_is_better for c in board.columns}
    assert directions["task/accuracy"] is True  # torchmetrics' declaration, through the registry
    assert directions["task/fid"] is False and directions["task/kid"] is False
    assert directions["robustness.adversarial/attack_success_rate"] is False
    assert directions["robustness.noise/mce"] is False and directions["robustness.noise/auc_relative"] is True
    assert directions["retrieval/mean_rank"] is False and directions["retrieval/recall@1"] is True
    assert None not in directions.values()
