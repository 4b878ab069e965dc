"""Plugin API 2: plugins written for API 1 keep working through a thin layer, or are refused in one line.

The three contrib packages as they were before the redesign are frozen under
``tests/fixtures/api1_contrib`` (``POLYMODAL_API = "1.0"``). They are put in
front of the live ones on ``PYTHONPATH`` in a subprocess, so the installed
entry points load the frozen code.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

import models_testkit as kit
from polymodal import PLUGIN_API_VERSION, component
from polymodal.model_api import PolymodalModel, build_model
from polymodal.plugins import PluginSettings, build_plugin_manager

FROZEN = Path(__file__).parent / "fixtures" / "api1_contrib"

SCRIPT = r'''
import json, warnings
import torch
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    from polymodal.plugins import build_plugin_manager
    pm = build_plugin_manager()
import polymodal_fusion_zoo, polymodal_minilm, polymodal_modality_gap
from polymodal.batch import Features
fusion = pm.build("fusions", "tensor", {"image": 8, "text": 8}, modality_dim=4, output_dim=6)
feats = {k: Features(torch.randn(3, 2, 8), torch.ones(3, 2, dtype=torch.bool)) for k in ("image", "text")}
gap = pm.build("metrics", "modality-gap")
gap.update(torch.nn.functional.normalize(torch.randn(8, 4), dim=-1), torch.nn.functional.normalize(torch.randn(8, 4), dim=-1))
print(json.dumps({
    "files": [m.__file__ for m in (polymodal_fusion_zoo, polymodal_minilm, polymodal_modality_gap)],
    "records": {n: r.to_json() for n, r in pm.records.items() if n.split(".")[0] in ("fusion-zoo", "minilm", "modality-gap")},
    "warnings": [str(w.message) for w in caught if issubclass(w.category, DeprecationWarning)],
    "fused": list(fusion(feats).shape),
    "gap": sorted(gap.compute()),
    "suites": sorted(s.name for s in pm.list("suites")),
}))
'''


def test_the_frozen_api1_contrib_packages_still_work_with_deprecation_notes():
    env = {k: v for k, v in os.environ.items() if not k.startswith("POLYMODAL_")}
    env["PYTHONPATH"] = os.pathsep.join(str(p / "src") for p in sorted(FROZEN.iterdir()) if (p / "src").is_dir())
    proc = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert all(str(FROZEN) in f for f in out["files"]), out["files"]  # really the frozen copies
    records = out["records"]
    assert len(records) == 7 and all(r["status"] == "loaded" and r["api"] == "1.0" for r in records.values())
    for name, r in records.items():
        assert r["notes"] and "declares POLYMODAL_API = '1.0'" in r["notes"][0], name
        assert f"set POLYMODAL_API = '{PLUGIN_API_VERSION}'" in r["notes"][0]
    assert len(out["warnings"]) == 7
    assert out["fused"] == [3, 6] and out["gap"]
    assert {"minilm-zero-shot", "minilm-fusion-ablation"} <= set(out["suites"])




class OldModel(PolymodalModel):
    def __init__(self, config, ctx):
        super().__init__(config, ctx)
        self.seen = (config.embed_dim, config.temperature, config.pair, config.lambda_, config.name)

    def loss(self, batch):
        raise NotImplementedError


def _old(plugin):
    plugin.POLYMODAL_API = "1.0"
    return plugin


def test_an_api1_model_reads_its_old_config_fields_through_the_bridge():
    old = _old(component("models", "old-model", OldModel, capabilities=["classify"]))
    with pytest.warns(DeprecationWarning, match=r"'old' .*POLYMODAL_API = '1.0'.*models: model options embed_dim"):
        pm = build_plugin_manager(PluginSettings(), entry_points=False, extra_plugins={"old": old, "kit": kit.kit})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        cfg = kit.experiment({"name": "old-model", "embed_dim": 12, "params": {"lambda": 0.2}})
    model = build_model(cfg.model, kit.context(pm))
    assert model.seen == (12, 0.07, None, 0.2, "old-model")


def test_an_api1_plugin_whose_contract_cannot_be_bridged_is_refused_in_one_line_and_the_rest_work():
    trainer = _old(component("trainers", "old-trainer", "json:dumps"))
    fine = component("fusions", "fine", "json:dumps")
    pm = build_plugin_manager(PluginSettings(), entry_points=False, extra_plugins={"old": trainer, "fine": fine})
    rec = pm.records["old"]
    assert rec.status == "failed" and "\n" not in rec.reason
    assert rec.reason.startswith("written for plugin API 1.0: its trainers hook cannot be bridged: the trainers "
                                 "contract changed")
    assert pm.records["fine"].status == "loaded" and pm.get("fusions", "fine").plugin == "fine"
    assert "old-trainer" not in pm.registry("trainers")
