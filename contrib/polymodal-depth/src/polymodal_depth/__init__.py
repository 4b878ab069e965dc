"""Plugin objects of polymodal-depth: one entry point per component family.

Light on purpose: every implementation is a lazy ``"module:attribute"``
string, so ``polymodal list`` imports neither torch nor numpy.
``POLYMODAL_API`` declares the plugin API these plugins were written against.
"""

from polymodal import component, components

POLYMODAL_API = "2.1"

modality = component(
    "modalities", "depth", "polymodal_depth.modality:DepthModality",
    description="Single-channel depth maps (metres) from .npy or 16-bit PNG (mm), scaled to [0, 1] by max_depth.",
)
encoder = component(
    "encoders", "depth-cnn", "polymodal_depth.encoder:DepthEncoder",
    description="Small CNN over depth plus a validity channel (zero depth = no reading); spatial tokens.",
)
corruptions = components(
    ("corruptions", "depth.sensor_noise", "polymodal_depth.corruptions:sensor_noise",
     {"description": "Depth-proportional Gaussian sensor noise, 1%..12% of the depth.", "tags": ["depth"]}),
    ("corruptions", "depth.holes", "polymodal_depth.corruptions:holes",
     {"description": "Missing readings (depth 0) in 5%..50% of the map, in blocks.", "tags": ["depth"]}),
)
dataset = component(
    "datasets", "depth-shapes", "polymodal_depth.dataset:DepthShapes",
    description="Procedural depth maps of a shape at a distance, paired with a text naming the distance band.",
)
model = component(
    "models", "range-classifier", "polymodal_depth.model:RangeClassifier",
    description="Fusion classifier with a second head that estimates the object's distance (estimate-range).",
    capabilities=["classify", "estimate-range"],
)
axis = component(
    "axes", "range-estimation", "polymodal_depth.axis:RangeAxis",
    description="Distance estimation error (MAE, RMSE) and the share within 10% of the true distance.",
    capabilities=["estimate-range"],
)
suite = component(
    "suites", "depth-quickstart", "polymodal_depth.suite_files:depth_suite",
    description="Depth + text classifier with range estimation: task, noise, adversarial, importance, range axes.",
)

for _plugin in (modality, encoder, corruptions, dataset, model, axis, suite):
    _plugin.POLYMODAL_API = POLYMODAL_API
del _plugin
