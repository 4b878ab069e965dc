"""Built-in training: ``polymodal train CONFIG`` and its strategies.

The strategies (joint, staged, adversarial) are a closed set chosen by
``[train] strategy``; they are small classes in this package rather than a
plugin kind, because all a new objective needs is a model ``loss``. This
module stays light: the command imports torch only when it runs.
"""

from polymodal import component

train_command = component(
    "commands", "train", "polymodal_plugins.training.command:configure",
    description="Train a model from an experiment TOML (joint, staged or adversarial); checkpoints and metrics.",
)
