"""polymodal: build, train and evaluate multimodal models from plugins.

The core is deliberately small and imports nothing heavy: hook
specifications, the plugin manager, registries of lazy component specs,
configuration, the runner and the results schema. Every modality, encoder,
fusion strategy, model, metric, evaluation axis, dataset and reporter is a
plugin.
"""

from polymodal.errors import (
    ConfigError,
    ConflictError,
    DataError,
    PluginError,
    PolymodalError,
    UnknownNameError,
    did_you_mean,
)
from polymodal.config import structure
from polymodal.hooks import hookimpl
from polymodal.manifest import component, components
from polymodal.plugins import PLUGIN_API_VERSION, Plugins, PluginSettings, build_plugin_manager, get_plugins
from polymodal.registry import ComponentSpec

__version__ = "0.1.0"

__all__ = [
    "PLUGIN_API_VERSION",
    "ComponentSpec",
    "ConfigError",
    "ConflictError",
    "DataError",
    "PluginError",
    "PluginSettings",
    "Plugins",
    "PolymodalError",
    "UnknownNameError",
    "__version__",
    "build_plugin_manager",
    "component",
    "components",
    "did_you_mean",
    "get_plugins",
    "hookimpl",
    "structure",
]
