"""The generated stacked datasets: deterministic, every class, bad names refused."""
import pytest
import torch

from camlab.errors import CamlabError
from camlab.study.data import CLASSES, StackedDataset, generate_image, write_png_folder


@pytest.mark.parametrize("variant", ["stack-shapes", "stack-clutter"])
def test_datasets_are_deterministic_and_shaped(variant):
    data = StackedDataset(variant, "test", length=5)
    image, label = data[3]
    again, label_again = StackedDataset(variant, "test", length=5)[3]
    assert image.shape == (3, 224, 224) and image.dtype == torch.float32
    assert 0 <= image.min() and image.max() <= 1 and 0 <= label < len(CLASSES)
    assert torch.equal(image, again) and label == label_again
    other_seed, _ = StackedDataset(variant, "test", length=5, seed=1)[3]
    other_split, _ = StackedDataset(variant, "train", length=5)[3]
    assert not torch.equal(image, other_seed) and not torch.equal(image, other_split)
    assert StackedDataset(variant, "val", size=96, length=2)[0][0].shape == (3, 96, 96)


def test_every_class_appears_and_bad_names_are_refused():
    labels = {generate_image("stack-shapes", "train", i, 32)[1] for i in range(200)}
    assert labels == set(range(len(CLASSES)))
    with pytest.raises(CamlabError, match="unknown dataset"):
        StackedDataset("stack-mix")
    with pytest.raises(CamlabError, match="unknown split"):
        StackedDataset("stack-shapes", "holdout")


def test_png_folder_for_browsing(tmp_path):
    paths = write_png_folder(tmp_path, count=3)
    assert [p.name.split("_")[0] for p in paths] == ["0000", "0001", "0002"]
    assert all(p.stat().st_size > 1000 for p in paths)
    folders = write_png_folder(tmp_path / "audit", count=3, class_folders=True)
    labels = [generate_image("stack-shapes", "test", i)[1] for i in range(3)]
    assert [p.relative_to(tmp_path / "audit").as_posix() for p in folders] == [
        f"{CLASSES[label]}/{i:04d}.png" for i, label in enumerate(labels)]
