"""A fusion ablation that separates strategies on clean data.

On the shapes interaction task (label = image cue XOR text cue) an additive
fusion (concatenation + linear head: one logit term per modality) stays at
chance, while the bilinear fusion learns it. The suite below is a shrunken
copy of the quick-start suite's ``interaction`` run; the paired test on the
shared test samples must call the difference significant.

The CNN needs ``width >= 16``: its GroupNorm has min(8, channels) groups,
so with 8 channels or fewer each group is one channel, and subtracting each
channel's spatial mean removes a uniform brightness shift, the image cue.
"""

from __future__ import annotations

from polymodal.stats import decode_per_sample, paired_test
from polymodal.testing import run_suite_with

SUITE = """
name = "interaction-ablation"
seeds = [0]
eval_split = "test"

[defaults.data]
dataset = "shapes"
params = { num_samples = 160, image_size = 8, frames = 1, distractors = 0, interaction = 2 }
batch_size = 16

[defaults.train]
epochs = 6
evaluate = false
optimizer = { name = "adamw", lr = 1e-2 }

[runs.interaction]
axes = ["task"]
model.name = "fusion-classifier"
model.target = "interaction"
model.fusion = ["concat", "bilinear"]
model.fusion_params = {}
model.encoders.image = { name = "cnn", params = { width = 16, depth = 1, output_dim = 16 } }
model.encoders.text = { name = "gru", params = { hidden_dim = 16, output_dim = 16 } }

[axes.task]
"""


def test_bilinear_fusion_beats_concat_on_the_interaction_task_with_significance(tmp_path):
    suite = tmp_path / "suite.toml"
    suite.write_text(SUITE, encoding="utf-8")
    rows = run_suite_with(suite, out=tmp_path / "out", limit=None)
    acc = {r["conditions"]["fusion"]: r for r in rows if r["axis"] == "task" and r["metric"] == "accuracy"}
    assert set(acc) == {"concat", "bilinear"}, sorted(acc)
    scores = {name: decode_per_sample(row["extra"]["per_sample"]) for name, row in acc.items()}
    assert acc["bilinear"]["extra"]["per_sample"]["ids"] == acc["concat"]["extra"]["per_sample"]["ids"]
    result = paired_test(scores["bilinear"], scores["concat"], seed=0)
    assert acc["bilinear"]["value"] > 0.8, acc["bilinear"]["value"]
    assert acc["concat"]["value"] < 0.65, acc["concat"]["value"]  # additive: near chance (0.5)
    assert result.difference > 0.2 and result.p_value < 0.05, result
