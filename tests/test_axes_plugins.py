"""The axis plugins are discoverable, build from suite parameters, and skip finished work on resume."""

from __future__ import annotations

import pytest
from axes_models import context, trained

import polymodal

AXES = {"task": frozenset(), "zero-shot": frozenset({"embed"}), "retrieval": frozenset({"embed"}),
        "interpretability.attention": frozenset(), "interpretability.importance": frozenset()}  # classify or transcribe: requires_any


def test_entry_points_build_with_parameters():
    plugins = polymodal.get_plugins()
    assert {s.name for s in plugins.list("axes")} >= set(AXES)
    for name, requires in AXES.items():
        axis = plugins.build("axes", name)
        assert axis.requires == requires and callable(axis.run)
    assert plugins.build("axes", "zero-shot", target="color", templates=["a {}"]).target == "color"
    assert plugins.build("axes", "task").requires_any == frozenset({"classify", "caption", "generate", "transcribe", "answer"})
    assert plugins.build("axes", "interpretability.importance").requires_any == frozenset({"classify", "transcribe", "answer"})
    with pytest.raises(TypeError):
        plugins.build("axes", "retrieval", top_k=3)


def test_importance_resume_skips_stored_measurements(tmp_path):
    model, data = trained("classifier", str(tmp_path.parent))
    axis = polymodal.get_plugins().build("axes", "interpretability.importance", methods=["ablation", "shapley"])
    first_ctx = context(tmp_path, "interpretability.importance", limit=16)
    first = list(axis.run(model, data, first_ctx))
    assert first and first_ctx.committed_units
    ctx = context(tmp_path, "interpretability.importance", limit=16)
    ctx.committed_units = set(first_ctx.committed_units)  # what a resumed run reads back from the store
    assert list(axis.run(model, data, ctx)) == []


def test_plugins_survive_their_implementation_modules_being_imported_first():
    # Importing pkg.concat rebinds the package attribute ``concat`` (the fusion's entry point).
    import polymodal_plugins.fusions.concat  # noqa: F401
    import polymodal_plugins.models.captioner  # noqa: F401
    from polymodal.plugins import PluginSettings, build_plugin_manager

    plugins = build_plugin_manager(PluginSettings(), entry_points=True)
    assert {"concat", "weighted", "attention"} <= {s.name for s in plugins.list("fusions")}
    assert "captioner" in {s.name for s in plugins.list("models")}
    assert not plugins.failed()
