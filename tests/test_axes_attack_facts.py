"""The adversarial axis reads each attack's declared ``iterative`` fact, never its name."""

from __future__ import annotations

import attrs
import torch
from axes_models import build, context

from polymodal import components
from polymodal.testing import make_plugin_manager
from polymodal_plugins.axes.adversarial import AdversarialAxis

SEEN: dict[str, dict] = {}


class OneShot:
    """A one-step attack taking only ``norm`` (the step options would be a TypeError): no perturbation."""

    iterative = False

    def __init__(self, norm: str = "linf") -> None:
        SEEN["one-shot"] = {"norm": norm}

    def __call__(self, loss_fn, inputs, *, epsilon, generator=None, device="cpu"):
        return {k: torch.zeros(s.shape, device=device) for k, s in inputs.items()}


class Walker(OneShot):
    """An iterative attack under a name the axis has never heard of: it must get the step options."""

    iterative = True

    def __init__(self, norm: str = "linf", steps: int = 1, step_size=None, random_start: bool = True) -> None:
        SEEN["walker"] = {"norm": norm, "steps": steps, "step_size": step_size, "random_start": random_start}


plugin = components(("attacks", "one-shot", OneShot, {}), ("attacks", "walker", Walker, {}))


def test_attacks_get_the_options_their_declared_facts_ask_for(tmp_path) -> None:
    model, data = build({"name": "fusion-classifier", "target": "color", "encoders": {"image": {
        "name": "cnn", "params": {"width": 4, "depth": 1, "output_dim": 8}}}}, samples=32, fields=["image"])
    ctx = attrs.evolve(context(tmp_path, "robustness.adversarial", limit=8),
                       plugins=make_plugin_manager(plugin, entry_points=True))
    axis = AdversarialAxis(attacks=["one-shot", "walker"], steps=3, step_size=0.5, random_start=False,
                           epsilons=[1 / 255])
    rows = list(axis.run(model, data, ctx))
    assert SEEN["one-shot"] == {"norm": "linf"}
    assert SEEN["walker"] == {"norm": "linf", "steps": 3, "step_size": 0.5, "random_start": False}
    clean = next(r.value for r in rows if r.conditions.get("attack") == "none")
    robust = {r.conditions["attack"]: r.value for r in rows if r.metric == "robust_accuracy"
              and r.conditions.get("attack") in ("one-shot", "walker")}
    assert robust == {"one-shot": clean, "walker": clean}  # zero deltas: nothing flipped
