"""A suite evaluating tiny random LLaVA- and Qwen2-VL-style ``hf-vlm`` models end to end on a VQA
JSONL and a circular multiple-choice file: the task axis's answering rows, in the results store."""

from __future__ import annotations

import json
import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from vlm_testkit import save_tiny_llava, save_tiny_qwen2_vl

SUITE = """
name = "vlm-tiny"
seeds = [0]
eval_split = "test"

[defaults.data]
root = "{root}"
fields = ["image", "text"]
batch_size = 4
modalities = {{ image = {{ size = 24, mean = [0, 0, 0], std = [1, 1, 1] }} }}

[defaults.train]
epochs = 0

[runs.llava-vqa]
data.dataset = "vqa"
model.name = "hf-vlm"
model.params = {{ model = "{llava}", max_new_tokens = 3 }}
axes = ["task", "attention"]

[runs.qwen-vqa]
data.dataset = "vqa"
model.name = "hf-vlm"
model.params = {{ model = "{qwen}", max_new_tokens = 3 }}
axes = ["task", "noise", "importance", "adversarial", "attention"]

[runs.llava-mc]
data.dataset = "multiple-choice"
data.params = {{ path = "mc.jsonl", circular = true }}
model.name = "hf-vlm"
model.params = {{ model = "{llava}", choice_mode = "likelihood" }}
axes = ["task", "adversarial"]

[runs.qwen-mc]
data.dataset = "multiple-choice"
data.params = {{ path = "mc.jsonl", circular = true }}
model.name = "hf-vlm"
model.params = {{ model = "{qwen}", max_new_tokens = 3 }}
axes = ["task"]

[axes.task]
examples = 2

[axes.importance]
axis = "interpretability.importance"
attribution_samples = 2

[axes.attention]
axis = "interpretability.attention"
examples = 2

[axes.adversarial]
axis = "robustness.adversarial"
attacks = ["pgd"]
targets = [["image"]]
epsilons = [0.05, 0.3]
steps = 2

[axes.noise]
axis = "robustness.noise"
severities = [3]
missing = false
corruptions = {{ image = ["gaussian_noise"], text = ["typos", "paraphrase"] }}
"""


def _data(root):
    from PIL import Image

    root.mkdir()
    for i, colour in enumerate([(250, 0, 0), (0, 0, 250), (0, 200, 0)]):
        Image.new("RGB", (30, 20), colour).save(root / f"{i}.png")
    vqa = [{"id": f"v{i}", "image": f"{i}.png", "question": "What colour is the picture?",
            "answers": [c] * 8 + ["dark"] * 2, "answer_type": "other"} for i, c in enumerate(["red", "blue", "green"])]
    vqa.append({"id": "v3", "image": "0.png", "question": "Is it red?", "answers": ["yes"] * 10, "answer_type": "yes/no"})
    (root / "questions.jsonl").write_text("\n".join(map(json.dumps, vqa)) + "\n")
    mc = [{"id": f"m{i}", "image": f"{i}.png", "question": "Which colour?", "A": "red", "B": "blue", "C": "green",
           "answer": "ABC"[i]} for i in range(3)]
    (root / "mc.jsonl").write_text("\n".join(map(json.dumps, mc)) + "\n")


@pytest.fixture(scope="module")
def vlm_results(tmp_path_factory):
    from polymodal.cli import main
    from polymodal.plugins import get_plugins

    base = tmp_path_factory.mktemp("vlm-suite")
    _data(base / "data")
    llava, qwen = save_tiny_llava(base / "llava"), save_tiny_qwen2_vl(base / "qwen")
    suite = base / "vlm.toml"
    suite.write_text(SUITE.format(root=base / "data", llava=llava, qwen=qwen))
    out = base / "out"
    try:
        code = main(["run", str(suite), "--out", str(out), "-q", "--fail-fast"])
    finally:
        get_plugins(refresh=True)
    assert code == 0
    return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines() if line.strip()], out


@pytest.mark.e2e
def test_vqa_rows_per_model(vlm_results):
    rows, _ = vlm_results
    for run in ("llava-vqa", "qwen-vqa"):
        task = {r["metric"]: r for r in rows if r["axis"] == "task" and r["run"].split("/")[0] == run}
        acc = task["vqa_accuracy"]
        assert 0.0 <= acc["value"] <= 1.0 and acc["extra"]["samples"] == 4
        assert set(acc["extra"]["per_answer_type"]) == {"other", "yes/no"}
        assert {"vqa_accuracy/other", "vqa_accuracy/yes/no"} <= set(task)


@pytest.mark.e2e
def test_noise_axis_on_answers_corrupts_image_and_question(vlm_results):
    rows, _ = vlm_results
    noise = [r for r in rows if r["axis"] == "robustness.noise" and r["metric"] == "qa_accuracy"]
    cells = sorted((r["conditions"].get("modality", ""), r["conditions"]["corruption"]) for r in noise)
    assert cells == [("", "none"), ("image", "gaussian_noise"), ("text", "paraphrase"), ("text", "typos")]
    clean = next(r for r in noise if r["conditions"]["corruption"] == "none")
    task = next(r for r in rows if r["axis"] == "task" and r["metric"] == "vqa_accuracy" and r["run"].startswith("qwen-vqa"))
    assert abs(clean["value"] - task["value"]) < 1e-12  # the same replies, the same official accuracy


@pytest.mark.e2e
def test_importance_axis_splits_the_answer_likelihood_between_image_and_prompt(vlm_results):
    rows, _ = vlm_results
    imp = [r for r in rows if r["axis"] == "interpretability.importance"]
    shapley = {r["conditions"]["modality"]: r for r in imp if r["metric"] == "shapley"}
    assert set(shapley) == {"image", "text"}
    extra = shapley["image"]["extra"]
    assert extra["value"] == "answer_loglik" and extra["samples"] == 2
    # efficiency: the two values add up to v(all) - v(none)
    assert abs(sum(r["value"] for r in shapley.values()) - (extra["full"] - extra["empty"])) < 1e-6
    assert {r["conditions"]["modality"] for r in imp if r["metric"] == "ablation_drop"} == {"image", "text"}


@pytest.mark.e2e
def test_pixel_pgd_on_the_answer_likelihood(vlm_results):
    rows = [r for r in vlm_results[0] if r["axis"] == "robustness.adversarial" and r["run"].startswith("qwen-vqa")]
    clean = [r for r in rows if r["conditions"].get("attack") == "none"]
    assert len(clean) == 1 and 0 <= clean[0]["value"] <= 1
    skipped = [r for r in rows if r["conditions"].get("attack") == "not_applicable"]
    assert [r["conditions"]["modality"] for r in skipped] == ["text"] and "perturb_input" in skipped[0]["extra"]["reason"]
    acc = {r["conditions"]["epsilon"]: r["value"] for r in rows if r["metric"] == "robust_accuracy"
           and r["conditions"].get("attack") == "pgd"}
    drop = {r["conditions"]["epsilon"]: r["value"] for r in rows if r["metric"] == "likelihood_drop"}
    assert sorted(acc) == sorted(drop) == [0.05, 0.3]
    assert acc[0.3] <= acc[0.05] <= clean[0]["value"]  # worst case over nested balls
    assert 0 < drop[0.05] < drop[0.3]  # PGD lowers the reference answer's likelihood, more with a bigger budget


@pytest.mark.e2e
def test_pixel_pgd_on_the_right_option_of_multiple_choice(vlm_results):
    rows = [r for r in vlm_results[0] if r["axis"] == "robustness.adversarial" and r["run"].startswith("llava-mc")]
    clean = next(r for r in rows if r["conditions"].get("attack") == "none")
    task = next(r for r in vlm_results[0] if r["axis"] == "task" and r["metric"] == "choice_accuracy"
                and r["run"].startswith("llava-mc"))
    assert clean["value"] == task["value"] and clean["extra"]["samples"] == 9  # 3 questions x 3 rotations
    acc = {r["conditions"]["epsilon"]: r["value"] for r in rows if r["metric"] == "robust_accuracy"
           and r["conditions"].get("attack") == "pgd"}
    drop = {r["conditions"]["epsilon"]: r["value"] for r in rows if r["metric"] == "likelihood_drop"}
    assert acc[0.3] <= acc[0.05] <= clean["value"] and 0 < drop[0.05] < drop[0.3]


@pytest.mark.e2e
def test_reply_attention_maps_are_drawn_over_the_image(vlm_results):
    rows, out = vlm_results
    arts = [json.loads(line) for line in (out / "artifacts.jsonl").read_text().splitlines() if line.strip()]
    for run in ("llava-vqa", "qwen-vqa"):
        att = {r["metric"]: r for r in rows if r["axis"] == "interpretability.attention" and r["run"].startswith(run)}
        assert 0 <= att["attention_entropy"]["value"] <= 1 and 0 < att["image_attention_mass"]["value"] <= 1
        maps = [a for a in arts if a["kind"] == "attention_map" and a["run"].startswith(run)]
        assert maps and all(a["data"]["method"] == "language_model_attention" for a in maps)
        assert all((out / a["path"]).is_file() and a["data"]["tokens"] for a in maps)
    assert "Attention maps" in (out / "report.html").read_text()


@pytest.mark.e2e
def test_reports_show_the_answering_families(vlm_results):
    _, out = vlm_results
    md = (out / "report.md").read_text()
    for metric in ("vqa_accuracy ↑", "choice_accuracy ↑", "circular_accuracy ↑", "qa_accuracy ↑",
                   "extraction_failure_rate ↓"):
        assert metric in md, metric
    report = json.dumps(json.loads((out / "report.json").read_text()))
    assert "shapley" in report and "answer_loglik" in report  # explanations: in the JSON and HTML, not ranked


@pytest.mark.e2e
def test_multiple_choice_rows_with_circular_and_failures(vlm_results):
    rows, _ = vlm_results
    for run, failures_possible in (("llava-mc", False), ("qwen-mc", True)):
        task = {r["metric"]: r for r in rows if r["axis"] == "task" and r["run"].split("/")[0] == run}
        acc = task["choice_accuracy"]
        assert acc["extra"]["samples"] == 9  # 3 questions x 3 rotations
        assert task["circular_accuracy"]["extra"]["groups"] == 3
        assert task["circular_accuracy"]["value"] <= acc["value"] + 1e-12
        if not failures_possible:  # likelihood choice always names an option
            assert task["extraction_failure_rate"]["value"] == 0.0


def test_docs_suite_names_real_parameters():
    """docs/vlm.md's suite parses, expands, and its model params are hf-vlm's declared ones."""
    import re
    import tomllib
    from pathlib import Path

    from polymodal.suite import expand_suite
    from polymodal_plugins.models.params import HFVLMParams

    text = (Path(__file__).resolve().parents[1] / "docs" / "vlm.md").read_text()
    block = re.search(r"```toml[^\n]*\n(.*?)```", text, re.S).group(1)
    data = tomllib.loads(block)
    suite = expand_suite(data, "docs/vlm.md")
    assert len(suite.runs) == 1
    params = data["runs"]["qwen2-vl-2b"]["model"]["params"]
    assert HFVLMParams(**params).model == "Qwen/Qwen2-VL-2B-Instruct"


@pytest.mark.e2e
def test_two_gloo_ranks_give_the_single_process_rows(vlm_results, tmp_path):
    """Answering is sharded over ranks (gathers in split order): 2 processes, the same rows."""
    from dist_workers import result_rows, spawn_suite_runs

    _, out = vlm_results
    suite = out.parent / "vlm.toml"
    spawn_suite_runs(2, [{"suite": str(suite), "out": str(tmp_path / "dist"), "limit": None}], timeout_s=300)
    single, dist = result_rows(out), result_rows(tmp_path / "dist")
    assert single.keys() == dist.keys() and single == dist
