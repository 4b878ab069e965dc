"""Models own their parameters: declared attrs classes, checked before training, old files mapped."""

from __future__ import annotations

import pytest

import models_testkit as kit
from polymodal.errors import ConfigError
from polymodal.model_api import build_model
from polymodal.runner import RunOptions, Runner
from polymodal.suite import expand_suite


@pytest.fixture(scope="module")
def pm():
    return kit.plugins()


def test_info_shows_the_real_parameters_and_defaults(pm):
    assert pm.get("models", "dual-encoder").parameters() == {
        "embed_dim": 128, "temperature": 0.07, "learn_temperature": True, "pair": None}
    assert pm.get("models", "co-learning").parameters() == {"lambda": 0.5}
    assert pm.get("models", "hf-clip").parameters()["model"] == "<required>"
    captioner = pm.get("models", "captioner").parameters()
    assert captioner["beam_size"] == 1 and captioner["dropout"] == 0.1 and captioner["image_field"] is None


def test_suite_validation_rejects_unknown_and_ill_typed_model_params(pm, tmp_path):
    img = {"image": {"name": "cnn"}}
    suite = expand_suite({
        "defaults": {"data": {"dataset": "shapes"}},
        "runs": {
            "cap": {"model": {"name": "captioner", "params": {"beam_sise": 3}}},
            "t2i": {"model": {"name": "text-to-image", "params": {"width": "wide"}}},
            "dual": {"model": {"name": "dual-encoder", "encoders": img, "params": {"temperature": -1.0}}},
            "fc": {"model": {"name": "fusion-classifier", "encoders": img, "fusion": "concatt"}},
        },
    }, "s.toml")
    with pytest.raises(ConfigError) as info:
        Runner(suite, pm, RunOptions(out=tmp_path / "o")).validate()
    text = str(info.value)
    assert "4 problem(s)" in text
    assert "model.params.beam_sise: unknown key (did you mean 'beam_size'?)" in text
    assert "model.params.width: expected an integer, got a string ('wide')" in text
    assert "temperature must be > 0" in text
    assert "unknown fusion 'concatt'" in text and "did you mean 'concat'" in text
    assert not (tmp_path / "o").exists()


def test_old_top_level_model_keys_still_reach_the_models_that_use_them(pm):
    with pytest.warns(DeprecationWarning, match=r"model.embed_dim, model.temperature: deprecated.*model.params"):
        cfg = kit.experiment({"name": "dual-encoder", "embed_dim": 12, "temperature": 0.5})
    model = build_model(cfg.model, kit.context(pm))
    assert model.proj["image"].out_features == 12
    assert float(model.log_scale.exp()) == pytest.approx(2.0)
    # params win over the old key; co-learning's TOML key is the Python keyword ``lambda``.
    with pytest.warns(DeprecationWarning, match="model.lambda"):
        cfg = kit.experiment({"name": "co-learning", "lambda": 0.3})
    assert build_model(cfg.model, kit.context(pm)).lam == 0.3
    with pytest.warns(DeprecationWarning):
        cfg = kit.experiment({"name": "co-learning", "lambda": 0.3, "params": {"lambda": 0.9}})
    assert build_model(cfg.model, kit.context(pm)).lam == 0.9
    # A model that never read the old key still ignores it, as before.
    with pytest.warns(DeprecationWarning):
        cfg = kit.experiment({"name": "fusion-classifier", "embed_dim": 12})
    build_model(cfg.model, kit.context(pm))


def test_building_checks_params_too(pm):
    cfg = kit.experiment({"name": "dual-encoder", "params": {"embed_dimm": 8}})
    with pytest.raises(ConfigError, match=r"test.toml: model.params.embed_dimm: unknown key \(did you mean 'embed_dim'\?\)"):
        build_model(cfg.model, kit.context(pm))


def test_polymodal_info_prints_the_parameter_class(capsys):
    import json

    from polymodal.cli import main

    assert main(["info", "model", "dual-encoder", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["parameters"]["embed_dim"] == 128 and info["parameter_types"]["pair"] == "list of str or nothing"
    assert main(["info", "strategy", "adversarial"]) == 0
    assert "    attack: str = 'pgd'" in capsys.readouterr().out


def test_a_checkpoint_written_by_plugin_api_1_still_loads(pm, tmp_path):
    from polymodal.checkpoint import load_model, save_checkpoint
    from polymodal.experiment import to_dict

    cfg = kit.experiment({"name": "dual-encoder", "params": {"embed_dim": 8}})
    ctx = kit.context(pm)
    model = build_model(cfg.model, ctx)
    old = to_dict(cfg)
    # What API 1 wrote: the moved model fields at top level, every strategy's table under [train].
    old["model"].pop("params")
    old["model"].update({"embed_dim": 8, "temperature": 0.07, "learn_temperature": True, "lambda": 0.5})
    old["train"].update({"adversarial": {"attack": "pgd", "epsilon": 0.0157}, "staged": {"freeze_epochs": 1}})
    save_checkpoint(tmp_path / "ck", model, experiment=old, context=ctx.to_json())
    with pytest.warns(DeprecationWarning):
        loaded = load_model(tmp_path / "ck", pm)
    assert loaded.proj["image"].out_features == 8
