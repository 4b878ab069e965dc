"""Built-in axes plugins (each its own entry point).

Light manifests only: nothing here imports torch; the implementation modules
are named by ``"module:attribute"`` strings and imported when built.
"""

from polymodal import component

robustness_noise = component(
    "axes", "robustness.noise", "polymodal_plugins.axes.noise:NoiseAxis",
    description="Per-modality corruptions (image/text/audio/video/missing) at severities 1-5; "
                "curves, relative AUC and corruption error.",
    capabilities=["classify", "embed"],
)
robustness_adversarial = component(
    "axes", "robustness.adversarial", "polymodal_plugins.axes.adversarial:AdversarialAxis",
    description="FGSM/PGD (L-inf, L2) on any modality or several jointly, text in embedding space; "
                "robust accuracy per epsilon and attack success rate.",
    capabilities=["classify"],
)
