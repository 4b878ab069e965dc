"""Built-in command plugins (each its own entry point)."""

from polymodal import component

score_plugin = component("commands", "score", "polymodal_plugins.commands.score:add_score_command",
                  description="Score prediction files offline: captions, retrieval, fid, kid, is (JSON output).")
