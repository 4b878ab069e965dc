"""Built-in dataset plugins, one entry point each (implementations import lazily)."""

from polymodal import component

shapes = component("datasets", "shapes", "polymodal_plugins.datasets.shapes:ShapesDataset",
                   description="Embedded procedurally generated world: image, EN/ZH captions, audio, video, labels; zero-shot split.")
