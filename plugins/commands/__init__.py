"""Built-in commands plugins (each its own entry point).

Plugin objects here are named ``*_command`` so that importing the module that
implements them (``new_plugin``) cannot shadow them as package attributes.
"""

from polymodal import component

new_plugin_command = component(
    "commands", "new-plugin", "polymodal_plugins.commands.new_plugin:configure",
    description="Write a ready-to-install plugin package (fusion, encoder, model, metric, axis, dataset).",
)
