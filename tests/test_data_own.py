"""Issue 18: a newcomer's own data. One regression test per problem they hit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from polymodal.errors import ConfigError, DataError
from polymodal.experiment import experiment_from_dict
from polymodal.plugins import build_plugin_manager


def _img(path: Path, colour=(255, 0, 0), size=(10, 7)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path)


def _manifest(root: Path, rows: list[dict], name: str = "manifest.jsonl") -> None:
    (root / name).write_text("".join(json.dumps(r) + "\n" for r in rows))


@pytest.fixture(scope="module")
def plugins():
    return build_plugin_manager()


def _build(plugins, name: str, **kw):
    return plugins.build("datasets", name, **kw)


def _experiment(root: Path, **data) -> object:
    return experiment_from_dict({
        "data": {"dataset": "manifest", "root": str(root), "batch_size": 4, "modalities": {"image": {"size": 8}},
                 **data},
        "model": {"name": "fusion-classifier",
                  "encoders": {"image": {"name": "cnn", "params": {"width": 4, "depth": 1, "output_dim": 8}}}},
        "train": {"epochs": 1, "threads": 1},
    })


def _labelled(root: Path, labels: list, split: list[str] | None = None) -> None:
    _img(root / "a.png")
    rows = [{"id": f"s{i}", "image": "a.png", "label": v} for i, v in enumerate(labels)]
    if split:
        for r, s in zip(rows, split, strict=True):
            r["split"] = s
    _manifest(root, rows)


# -- 3. label types ------------------------------------------------------------------
def test_mixed_label_types_are_an_error_naming_the_lines(plugins, tmp_path):
    _labelled(tmp_path, [0, "one", 1, "two"])
    with pytest.raises(DataError, match=r"target 'label' mixes value types \(integer at line\(s\) 1, 3; "
                                        r"string at line\(s\) 2, 4\)"):
        _build(plugins, "manifest", root=str(tmp_path))


def test_numeric_strings_stay_class_names_in_jsonl(plugins, tmp_path):
    _labelled(tmp_path, ["1", "10", "2"])
    ds = _build(plugins, "manifest", root=str(tmp_path))
    assert ds.class_names["label"] == ["1", "10", "2"]  # names, sorted as text; never silently integers
    assert [ds[i]["label"] for i in range(3)] == [0, 1, 2]


# -- 2. class count from the data ------------------------------------------------------
def test_integer_labels_give_the_class_count_across_splits(plugins, tmp_path):
    # The largest label (3) is only in the test split; the training split must still know 4 classes.
    _labelled(tmp_path, [0, 1, 0, 1, 3], split=["train", "train", "val", "val", "test"])
    from polymodal.model_api import ModelContext
    from polymodal_plugins.training.data_source import from_experiment

    config = _experiment(tmp_path)
    data, fields, targets, _ = from_experiment(config, plugins, "exp.toml")
    assert targets["label"].num_classes == 4
    assert ModelContext(plugins=plugins, targets=targets).num_classes(config.model) == 4
    batch = next(iter(data.train_batches(0)))
    assert batch.targets["label"].dtype.is_floating_point is False


def test_a_regression_target_is_not_called_missing(plugins, tmp_path):
    _labelled(tmp_path, [0.5, 1.5])
    from polymodal.model_api import ModelContext, TargetInfo

    ctx = ModelContext(plugins=plugins, targets={"label": TargetInfo("label")})
    with pytest.raises(ConfigError, match="target 'label' has no class count"):
        ctx.num_classes(_experiment(tmp_path).model)


# -- 4. splits -------------------------------------------------------------------------
def test_seeded_stratified_split(plugins, tmp_path):
    from polymodal.splits import parse_split, split_indices

    labels = [i % 3 for i in range(300)]
    spec = parse_split({"train": 0.8, "val": 0.1, "test": 0.1, "seed": 0})
    parts = split_indices(labels, spec)
    assert parts == split_indices(labels, spec)  # seeded
    assert parts != split_indices(labels, parse_split({"train": 0.8, "val": 0.1, "test": 0.1, "seed": 1}))
    every = sorted(i for p in parts.values() for i in p)
    assert every == list(range(300))  # each sample exactly once
    for name, frac in (("train", 0.8), ("val", 0.1), ("test", 0.1)):
        for c in range(3):  # stratified: each class in proportion
            assert sum(labels[i] == c for i in parts[name]) == pytest.approx(100 * frac, abs=1)
    with pytest.raises(ConfigError, match="fractions sum to 1.2"):
        parse_split({"train": 0.8, "val": 0.4})


def test_data_split_in_an_experiment_makes_disjoint_splits(plugins, tmp_path):
    _labelled(tmp_path, ["a", "b"] * 10)
    from polymodal_plugins.training.data_source import from_experiment

    config = _experiment(tmp_path, split={"train": 0.5, "val": 0.25, "test": 0.25, "seed": 3})
    data, _, targets, _ = from_experiment(config, plugins, "exp.toml")
    ids = {name: {ds[i]["id"] for i in range(len(ds))} for name, ds in data.splits.items()}
    assert [len(ids[s]) for s in ("train", "val", "test")] == [10, 5, 5]
    assert not (ids["train"] & ids["val"]) and not (ids["train"] & ids["test"]) and not (ids["val"] & ids["test"])
    assert targets["label"].labels == ["a", "b"] and data.notes == []
    with pytest.raises(ConfigError, match=r"split.val: expected a fraction"):
        _experiment(tmp_path, split={"train": 0.5, "val": "x"})


def test_evaluating_on_training_data_is_a_loud_warning(plugins, tmp_path, capsys):
    _labelled(tmp_path, ["a", "b"])  # no split column: every split is every row
    from polymodal_plugins.training.data_source import from_experiment

    data, *_ = from_experiment(_experiment(tmp_path), plugins, "exp.toml")
    assert len(data.notes) == 2 and all("is the training data" in n for n in data.notes)
    assert "warning: data: the 'val' split of dataset 'manifest' is the training data" in capsys.readouterr().err


def test_no_val_split_is_spelled_false(plugins, tmp_path):
    _labelled(tmp_path, ["a", "b", "a"], split=["train", "train", "test"])
    from polymodal.experiment import to_dict
    from polymodal_plugins.training.data_source import from_experiment

    with pytest.raises(DataError, match=r"no rows with split='val' \(splits present: test, train\).*"
                                        r"set data.val_split = false"):
        from_experiment(_experiment(tmp_path), plugins, "exp.toml")
    config = _experiment(tmp_path, val_split=False)
    data, *_ = from_experiment(config, plugins, "exp.toml")
    assert sorted(data.splits) == ["test", "train"]
    again = experiment_from_dict(to_dict(config))  # the choice survives a save and reload
    assert again.data.val_split == "" and again.data.test_split == "test"


# -- 5. skipped samples and failures are visible ------------------------------------------
SUITE = """
name = "own"
seeds = [0]
[defaults.data]
dataset = "manifest"
root = "{root}"
params = {{ on_error = "skip" }}
batch_size = 4
modalities = {{ image = {{ size = 8 }} }}
[defaults.train]
epochs = 1
threads = 1
[runs.ok]
model.name = "fusion-classifier"
model.encoders.image = {{ name = "cnn", params = {{ width = 4, depth = 1, output_dim = 8 }} }}
[runs.broken]
model.name = "fusion-classifier"
model.target = "nope"
model.encoders.image = {{ name = "cnn", params = {{ width = 4, depth = 1, output_dim = 8 }} }}
[axes.task]
"""


def test_skips_shared_splits_and_failures_reach_console_manifest_and_report(plugins, tmp_path, capsys):
    from polymodal.report import load_results
    from polymodal.runner import RunOptions, run_suite

    root = tmp_path / "data"
    _img(root / "a.png")
    (root / "broken.png").write_bytes(b"not a png")
    _manifest(root, [{"id": f"s{i}", "image": "a.png", "label": "ab"[i % 2]} for i in range(6)]
              + [{"id": "bad", "image": "broken.png", "label": "a"}])
    suite = tmp_path / "suite.toml"
    suite.write_text(SUITE.format(root=root))
    out = tmp_path / "out"
    _, manifest = run_suite(str(suite), plugins=plugins, options=RunOptions(out=out, progress=False))
    err = capsys.readouterr().err
    assert "skipped 1 sample(s) of split 'train' that failed to load: bad: dataset 'manifest', sample 'bad' " \
           "(manifest.jsonl line 7)" in err
    assert "is the training data" in err
    assert "run broken" in err and "failed" in err and "nope" in err  # printed although progress is off
    ok = next(r for r in json.loads((out / "manifest.json").read_text())["runs"] if r["id"].startswith("ok"))
    assert ok["skipped"] == 1 and ok["skipped_samples"]["train"][0]["id"] == "bad"
    problems = load_results(out).problems
    assert any("skipped 1 sample" in p for p in problems) and any("is the training data" in p for p in problems)


def test_errors_name_the_manifest_line(plugins, tmp_path):
    _img(tmp_path / "a.png")
    _manifest(tmp_path, [{"id": "x", "image": "a.png", "label": 0}, {"id": "y", "image": "gone.png", "label": 1}])
    ds = _build(plugins, "manifest", root=str(tmp_path))
    with pytest.raises(DataError, match=r"sample 'y' \(manifest.jsonl line 2\), field 'image'"):
        ds[1]


# -- 6. configure() ------------------------------------------------------------------------
def test_configure_changes_the_modality_itself(plugins):
    image = plugins.build("modalities", "image", size=32)
    image.configure({"input_size": (3, 24, 24)})  # return value ignored, as in the issue
    assert tuple(image.preprocess(Image.new("RGB", (50, 40))).shape) == (3, 24, 24)
    audio = plugins.build("modalities", "audio")
    assert audio.configure({"sample_rate": 8000}) is audio and audio.sample_rate == 8000
    video = plugins.build("modalities", "video", frames=2, size=16)
    video.configure({"frames": 3, "input_size": (3, 12, 12)})
    assert video.frames == 3 and tuple(video.image.size) == (12, 12)
    text = plugins.build("modalities", "text", max_length=16)
    text.configure({"max_length": 5})
    assert text.max_length == 5


# -- 7. readers ----------------------------------------------------------------------------
def test_image_folder_rejects_folders_that_are_not_classes(plugins, tmp_path):
    _img(tmp_path / "cat" / "1.png")
    _img(tmp_path / "dog" / "1.png")
    (tmp_path / "empty").mkdir()
    (tmp_path / "wheel").mkdir()
    (tmp_path / "wheel" / "torch.whl").write_bytes(b"zip")
    with pytest.raises(DataError, match=r"sub-folder\(s\) empty/, wheel/ hold no images.*classes = \[\.\.\.\]"):
        _build(plugins, "image-folder", root=str(tmp_path))
    ds = _build(plugins, "image-folder", root=str(tmp_path), classes=["dog", "cat"])
    assert ds.class_names["label"] == ["dog", "cat"] and [ds[i]["label"] for i in range(2)] == [0, 1]
    with pytest.raises(DataError, match=r"classes \['bird'\] have no folder"):
        _build(plugins, "image-folder", root=str(tmp_path), classes=["bird"])


def test_coco_reader_suggests_the_json_that_is_there(plugins, tmp_path):
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / "captions_val2017.json").write_text('{"images": [], "annotations": []}')
    with pytest.raises(DataError, match=r"captions.json' not found; JSON files under the root: "
                                        r"annotations/captions_val2017.json \(pass annotations = "):
        _build(plugins, "coco-captions", root=str(tmp_path))


def test_csv_integer_and_mixed_columns(plugins, tmp_path):
    _img(tmp_path / "a.png")
    (tmp_path / "m.csv").write_text("image,label\na.png,0\na.png,cat\n")
    with pytest.raises(DataError, match=r"integer at line\(s\) 2; string at line\(s\) 3"):
        _build(plugins, "manifest", root=str(tmp_path), path="m.csv")
