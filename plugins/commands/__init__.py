"""Built-in command plugins (each its own entry point).

Plugin objects here are named ``*_command`` / ``*_plugin`` so that importing
the module that implements them cannot shadow them as package attributes.
"""

from polymodal import component

score_plugin = component(
    "commands", "score", "polymodal_plugins.commands.score:add_score_command",
    description="Score prediction files offline: captions, retrieval, fid, kid, is (JSON output).",
)

new_plugin_command = component(
    "commands", "new-plugin", "polymodal_plugins.commands.new_plugin:configure",
    description="Write a ready-to-install plugin package (fusion, encoder, model, metric, axis, dataset).",
)

data_command = component(
    "commands", "data", "polymodal_plugins.commands.data:configure",
    description="Look at a dataset before training: 'data inspect' (fields, labels, shapes, failing samples), 'data preview' (HTML).",
)
