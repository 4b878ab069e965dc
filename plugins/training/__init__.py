"""Built-in training: ``polymodal train CONFIG`` and its strategies.

The strategies (joint, staged, adversarial) are registered components of
kind ``strategies``, each its own entry point, chosen by ``[train]
strategy`` exactly as a third-party strategy would be. Their options are
``attrs`` classes in :mod:`.strategy_params` (light: no torch), so they are
listed and validated before anything trains. This module stays light: the
command imports torch only when it runs.
"""

from polymodal import component

train_command = component(
    "commands", "train", "polymodal_plugins.training.command:configure",
    description="Train a model from an experiment TOML (joint, staged or adversarial); checkpoints and metrics.",
)

default_trainer = component(
    "trainers", "default", "polymodal_plugins.training.suite_entry:train_run",
    description="Train each suite run with polymodal's trainer (joint/staged/adversarial), resumable per run.",
)

joint_strategy = component(
    "strategies", "joint", "polymodal_plugins.training.joint:JointStrategy",
    params="polymodal_plugins.training.strategy_params:JointParams",
    description="All modalities together on the model's own loss.",
)
staged_strategy = component(
    "strategies", "staged", "polymodal_plugins.training.staged:StagedStrategy",
    params="polymodal_plugins.training.strategy_params:StagedParams",
    description="Unimodal pre-training of each encoder, then fusion with encoders frozen, then fine-tuning.",
)
adversarial_strategy = component(
    "strategies", "adversarial", "polymodal_plugins.training.adversarial:AdversarialStrategy",
    params="polymodal_plugins.training.strategy_params:AdversarialParams",
    description="Clean and adversarial losses mixed; the attack comes from the attacks registry (fgsm, pgd, ...).",
)
