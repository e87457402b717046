"""STACK-MIX from a folder of photographs (camlab.study.stackmix) and Table 1 on it."""

import io

import numpy as np
import pytest
import torch
from PIL import Image

from camlab import CamlabError
from camlab.images import read_image
from camlab.study.stackmix import StackMix
from camlab.study.table1 import leakage_table, main, paper_band
from camlab.study.wallvgg import load_checkpoint
from camlab.walls import unseen_region
from tests.paths import MODELS

COLOURS = {"cat": (200, 40, 40), "dog": (40, 200, 40), "owl": (40, 40, 200)}


def _photo(colour, seed, size=(300, 200)) -> bytes:
    noise = np.random.default_rng(seed).integers(-30, 30, (size[1], size[0], 3))
    buffer = io.BytesIO()
    Image.fromarray(np.clip(np.array(colour) + noise, 0, 255).astype(np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def folder(tmp_path):
    for index, (name, colour) in enumerate(COLOURS.items()):
        (tmp_path / name).mkdir()
        for k in range(3):
            (tmp_path / name / f"{k}.png").write_bytes(_photo(colour, 10 * index + k))
    (tmp_path / "lonely").mkdir()  # one photograph: no pair, so no class
    (tmp_path / "lonely" / "0.png").write_bytes(_photo((128, 128, 128), 99))
    return tmp_path


def test_each_image_stacks_two_different_photographs_of_its_class(folder):
    data = StackMix(folder, length=12, size=64)
    assert data.class_names == ["cat", "dog", "owl"] and len(data) == 12
    for index in range(12):
        image, label = data[index]
        _, top, bottom = data.pair(index)
        assert image.shape == (3, 64, 64) and top != bottom
        assert top.parent.name == bottom.parent.name == data.class_names[label]
        colour = torch.tensor(COLOURS[data.class_names[label]]) / 255
        for half in (image[:, :32], image[:, 32:]):  # both halves show the class's colour
            assert (half.mean(dim=(1, 2)) - colour).abs().max() < 0.03
    again = StackMix(folder, length=12, size=64)
    assert all(torch.equal(data[i][0], again[i][0]) for i in range(12))
    other = StackMix(folder, length=12, size=64, seed=1)
    assert [data.pair(i) for i in range(12)] != [other.pair(i) for i in range(12)]


def test_a_half_is_the_photographs_centre_square_squashed_or_cropped(folder):
    path = folder / "cat" / "0.png"
    square, _ = read_image(path.read_bytes(), 64)
    cropped = StackMix(folder, size=64, halves="crop").half(path)
    assert torch.equal(cropped, square[:, 16:48])
    squashed = StackMix(folder, size=64).half(path)
    assert squashed.shape == (3, 32, 64) and torch.allclose(squashed.mean(), square.mean(), atol=0.01)


def test_a_folder_it_cannot_use_is_one_clear_error(folder, tmp_path_factory):
    with pytest.raises(CamlabError, match="not a folder"):
        StackMix(folder / "missing")
    with pytest.raises(CamlabError, match="two photographs or more"):
        StackMix(folder / "lonely")
    with pytest.raises(CamlabError, match="must be even"):
        StackMix(folder, size=63)
    with pytest.raises(CamlabError, match="halves is one of"):
        StackMix(folder, halves="stretch")
    (folder / "cat" / "1.png").write_bytes(b"not a picture")
    data = StackMix(folder, length=40, size=32)
    broken = next(i for i in range(40) if folder / "cat" / "1.png" in data.pair(i)[1:])
    with pytest.raises(CamlabError, match="1.png: could not read"):
        data[broken]


def test_table1_on_stackmix_with_the_papers_band(folder, tmp_path):
    paths = [MODELS / "masked_vgg.pt", MODELS / "baseline_vgg.pt"]
    size = load_checkpoint(paths[0]).input_size
    assert torch.equal(unseen_region(load_checkpoint(paths[0]).model, (3, size, size)), paper_band(size))
    spec = f"stackmix:{folder}"
    paper = leakage_table(paths, [spec], images=4, methods=["gradcam", "hirescam"], region="paper", progress=False)
    computed = leakage_table(paths, [spec], images=4, methods=["gradcam", "hirescam"], progress=False)
    assert paper == computed  # the shipped walled VGG's computed region is the paper's bottom 54 rows
    masked = paper[("masked_vgg", f"stackmix:{folder.name}")]
    assert masked["hirescam"] == (0.0, 0.0) and masked["gradcam"][0] > 0
    out = tmp_path / "table.md"
    main(["--data", spec, "--images", "2", "--methods", "gradcam", "--region", "paper", "--out", str(out)])
    assert f"| masked_vgg / stackmix:{folder.name} | baseline_vgg / stackmix:{folder.name} |" in out.read_text()
    with pytest.raises(SystemExit, match=f"share the column stackmix:{folder.name}"):
        leakage_table(paths, [spec, f"stackmix:{folder}/"], images=2, methods=["gradcam"], progress=False)
