"""Built-in named suites (kind ``suites``): TOML files shipped with the package.

``polymodal list suites`` shows them; ``polymodal run NAME`` runs one. The
factory of each is the path of its file, so listing imports nothing.
"""

from pathlib import Path

from polymodal import component

HERE = Path(__file__).parent
QUICKSTART = HERE / "quickstart.toml"

quickstart = component(
    "suites", "quickstart", "polymodal_plugins.suites:QUICKSTART",
    description="Train small models with each fusion strategy on `shapes` and evaluate every axis (minutes on CPU).",
)
