"""The built-in polymodal plugins.

Each module (or manifest object) here is its own entry point in group
``polymodal`` and gets no privilege a third-party plugin lacks: it can be
disabled by name, and replaced by a plugin that says so explicitly.
"""
