"""The auditor's images: a folder with one sub-folder per class (torchvision's ImageFolder
convention, each folder matched to the model's class *of that name*), a flat folder (the maps
explain the predicted class), a CSV of ``file,label``, a zip archive of any of these, or camlab's
generated splits (with object masks, for localisation).

Object masks of the auditor's own images (for localisation) come as a second folder or zip that
mirrors the images' paths: the mask of ``cat/001.jpg`` is ``<masks>/cat/001.png`` (any image
suffix), bright where the object is, the image's own size. An image without a readable mask is
skipped with its reason, so localisation is over every audited image.

A file that cannot be read is skipped, counted and named with its reason: an audit never dies on
one bad file. A folder that names no class of the model is an error, before any work.
"""
from __future__ import annotations

import csv
import difflib
import hashlib
import io
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from torch.utils.data import Dataset

from ..errors import CamlabError
from ..images import IMAGE_SUFFIXES, MAX_IMAGE_BYTES, picture_size, read_image, read_mask
from ..study.data import CLASSES, SPLITS, VARIANTS, StackedDataset

MAX_IMAGES = 20_000
# a zip archive: what may be unpacked (its declared sizes are checked before anything is written)
MAX_ZIP_MEMBERS = 5_000
MAX_ZIP_UNPACKED_BYTES = 2 * 2**30
GENERATED = "generated:"  # generated:<variant>/<split>, e.g. generated:stack-shapes/test


@dataclass(frozen=True)
class Preprocessing:
    """How an image file becomes the model's input: the centre square of ``crop_fraction`` of the
    shorter side, resized to ``size`` (torchvision's Resize(256) + CenterCrop(224) is 0.875), in
    [0, 1]; the model normalises inside with ``mean`` / ``std``. ``source`` says where it came from."""

    size: int
    crop_fraction: float = 1.0
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()
    source: str = ""

    def describe(self) -> str:
        """The preprocessing in words, for the report."""
        crop = f"centre {100 * self.crop_fraction:.1f}% of the shorter side" if self.crop_fraction != 1 else \
            "centre square"
        norm = f"; normalised inside the model with mean {self.mean} and std {self.std}" if self.mean else ""
        return f"{crop}, resized to {self.size}x{self.size} (bilinear), RGB in [0, 1]{norm} — {self.source}"


@dataclass(frozen=True)
class ImageItem:
    """One readable image: its path relative to the source (the CSV's ``image`` column), its label
    (the model's class index; None when unlabelled) and the SHA-256 of its file."""

    path: str
    label: int | None
    sha256: str
    mask: str = ""  # the mask's path relative to the masks' folder, when masks were given
    mask_sha256: str = ""


@dataclass
class ImageSet:
    """What an audit reads: the readable ``items``, the ``skipped`` files with their reasons, the
    source's ``kind`` and ``description``; ``generated`` for camlab's own splits."""

    items: list[ImageItem]
    kind: str
    description: str
    root: Path | None = None
    skipped: list[tuple[str, str]] = field(default_factory=list)
    generated: StackedDataset | None = None
    mask_root: Path | None = None  # the object masks' folder (:func:`attach_masks`)

    @property
    def labelled(self) -> bool:
        """Whether every image has a label (accuracy and per-class rows need them)."""
        return bool(self.items) and all(item.label is not None for item in self.items)


def _class_index(name: str, class_names: list[str], where: str, allow_index: bool = False) -> int:
    """The model's class called ``name``: exactly, else ignoring case, spaces, '_' and '-' (else,
    with ``allow_index``, a class index). A name that matches none is an error with the closest
    class names."""
    if name in class_names:
        return class_names.index(name)

    def plain(text: str) -> str:
        return "".join(ch for ch in text.lower() if ch not in " _-")

    matches = [i for i, known in enumerate(class_names) if plain(known) == plain(name)]
    if len(matches) == 1:
        return matches[0]
    if allow_index and name.isdigit() and int(name) < len(class_names):
        return int(name)
    close = difflib.get_close_matches(name, class_names, n=3)
    hint = f"; closest: {', '.join(close)}" if close else ""
    raise CamlabError(f"{where} {name!r} names no class of the model ({len(class_names)} classes, e.g. "
                      f"{', '.join(class_names[:3])}){hint}")


def _checked(path: Path, size: int, crop_fraction: float) -> tuple[str | None, str]:
    """(sha256, "") for a readable image, else (None, why not)."""
    try:
        if path.stat().st_size > MAX_IMAGE_BYTES:
            return None, f"{path.stat().st_size / 2**20:.0f} MiB, over the {MAX_IMAGE_BYTES // 2**20} MiB limit"
        data = path.read_bytes()
        read_image(data, size, crop_fraction)
    except CamlabError as exc:
        return None, str(exc)
    except OSError as exc:
        return None, f"cannot be read ({type(exc).__name__})"
    return hashlib.sha256(data).hexdigest(), ""


def _collect(files: list[tuple[Path, int | None]], root: Path, preprocessing: Preprocessing, kind: str,
             description: str, skipped: list[tuple[str, str]]) -> ImageSet:
    if len(files) > MAX_IMAGES:
        raise CamlabError(f"{len(files):,} images; an audit reads at most {MAX_IMAGES:,} (split the folder)")
    items = []
    for path, label in files:
        digest, reason = _checked(path, preprocessing.size, preprocessing.crop_fraction)
        relative = path.relative_to(root).as_posix()
        if digest is None:
            skipped.append((relative, reason))
        else:
            items.append(ImageItem(relative, label, digest))
    if not items:
        raise CamlabError(f"no readable image in {description} ({len(skipped)} file(s) skipped"
                          + (f", e.g. {skipped[0][0]}: {skipped[0][1]}" if skipped else "") + ")")
    return ImageSet(items, kind, description, root, skipped)


def _visible(path: Path, root: Path) -> bool:
    return not any(part.startswith((".", "__MACOSX")) for part in path.relative_to(root).parts)


def folder_images(root: Path, class_names: list[str], preprocessing: Preprocessing) -> ImageSet:
    """Class sub-folders (each matched to the model's class of that name; nested folders inside a
    class folder belong to it), or a flat folder of images (unlabelled)."""
    if not root.is_dir():
        raise CamlabError(f"no folder at {root}")
    entries = sorted(p for p in root.iterdir() if _visible(p, root))
    folders = [p for p in entries if p.is_dir()]
    skipped: list[tuple[str, str]] = []
    if folders:
        labels = {folder.name: _class_index(folder.name, class_names, "the folder") for folder in folders}
        files = []
        for folder in folders:
            for path in sorted(folder.rglob("*")):
                if path.is_file() and _visible(path, root):
                    if path.suffix.lower() in IMAGE_SUFFIXES:
                        files.append((path, labels[folder.name]))
                    else:
                        skipped.append((path.relative_to(root).as_posix(), "not an image file name"))
        for path in entries:
            if path.is_file():
                skipped.append((path.name, "beside the class folders, so it has no class"))
        return _collect(files, root, preprocessing, "class folders",
                        f"{root.name}/ ({len(folders)} class folders)", skipped)
    files = []
    for path in entries:
        if path.suffix.lower() in IMAGE_SUFFIXES:
            files.append((path, None))
        elif path.is_file():
            skipped.append((path.name, "not an image file name"))
    return _collect(files, root, preprocessing, "flat folder", f"{root.name}/ (unlabelled)", skipped)


def csv_images(table: Path, class_names: list[str], preprocessing: Preprocessing) -> ImageSet:
    """A CSV with columns ``file`` (relative to the CSV's folder) and ``label`` (a class name or
    index)."""
    root = table.parent.resolve()
    try:
        rows = list(csv.DictReader(io.StringIO(table.read_text(encoding="utf-8-sig"))))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise CamlabError(f"cannot read {table.name} as a CSV ({type(exc).__name__})") from exc
    if not rows or not {"file", "label"} <= set(rows[0]):
        raise CamlabError(f"{table.name} needs a header with the columns file,label")
    files, skipped = [], []
    for row in rows:
        name, label = (row["file"] or "").strip(), (row["label"] or "").strip()
        path = (root / name).resolve()
        if not path.is_relative_to(root):
            skipped.append((name, "outside the CSV's folder"))
        elif not path.is_file():
            skipped.append((name, "no such file"))
        else:
            files.append((path, _class_index(label, class_names, "a CSV label", allow_index=True)))
    return _collect(files, root, preprocessing, "csv", f"{table.name} ({len(rows)} rows)", skipped)


def unpack_zip(archive: Path | bytes, into: Path) -> Path:
    """Unpack a zip archive's regular files into ``into``, refusing absolute paths, ``..``, links
    and more than :data:`MAX_ZIP_MEMBERS` files or :data:`MAX_ZIP_UNPACKED_BYTES` (declared sizes,
    checked before anything is written, then enforced while writing). Returns the folder that
    holds the images (the archive's single top folder, if it has one)."""
    try:
        opened = zipfile.ZipFile(io.BytesIO(archive) if isinstance(archive, bytes) else archive)
    except (zipfile.BadZipFile, OSError) as exc:
        raise CamlabError(f"not a readable zip archive ({type(exc).__name__})") from exc
    with opened:
        members = [m for m in opened.infolist() if not m.is_dir()]
        if len(members) > MAX_ZIP_MEMBERS:
            raise CamlabError(f"the archive holds {len(members):,} files; the limit is {MAX_ZIP_MEMBERS:,}")
        declared = sum(m.file_size for m in members)
        if declared > MAX_ZIP_UNPACKED_BYTES:
            raise CamlabError(f"the archive unpacks to {declared / 2**30:.1f} GiB; the limit is "
                              f"{MAX_ZIP_UNPACKED_BYTES / 2**30:.0f} GiB")
        into = into.resolve()
        for member in members:
            target = (into / member.filename).resolve()
            link = (member.external_attr >> 16) & 0o170000 == 0o120000
            if link or not target.is_relative_to(into) or member.filename.startswith("/"):
                continue  # never written: a link, or a path that leaves the folder
            if member.file_size > MAX_IMAGE_BYTES:
                continue  # larger than any image camlab reads; the folder scan never sees it
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                with opened.open(member) as source:
                    data = source.read(member.file_size + 1)  # zipfile checks the size and CRC as it reads
            except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, RuntimeError):
                data = b""  # written empty, so the scan names it as unreadable
            target.write_bytes(data)
    tops = [p for p in into.iterdir() if _visible(p, into)]
    return tops[0] if len(tops) == 1 and tops[0].is_dir() else into


def generated_images(spec: str, count: int, class_names: list[str], size: int) -> ImageSet:
    """``generated:<variant>/<split>``: ``count`` images of camlab's generated data, with masks."""
    variant, _, split = spec[len(GENERATED):].partition("/")
    split = split or "test"
    if variant not in VARIANTS or split not in SPLITS:
        raise CamlabError(f"{spec!r}: use generated:<variant>/<split> with a variant of {', '.join(VARIANTS)} and a "
                          f"split of {', '.join(SPLITS)}")
    if list(class_names) != list(CLASSES):
        raise CamlabError(f"the generated data's labels are {', '.join(CLASSES)}; this model predicts other classes")
    data = StackedDataset(variant, split, size=size, length=count, masks=True)
    items = []
    for index in range(count):
        image, label, _ = data.with_mask(index)
        digest = hashlib.sha256((image * 255).round().to(torch.uint8).numpy().tobytes()).hexdigest()
        items.append(ImageItem(f"{variant}/{split}/{index:04d}_{CLASSES[label]}.png", label, digest))
    return ImageSet(items, "generated", f"camlab's generated {variant}/{split}, {count} images", generated=data)


def open_images(source: str | Path, class_names: list[str], preprocessing: Preprocessing, work_dir: Path,
                count: int = 100) -> ImageSet:
    """Any source this module reads (see the module docstring); a zip is unpacked into ``work_dir``."""
    text = str(source)
    if text.startswith(GENERATED):
        return generated_images(text, count, class_names, preprocessing.size)
    path = Path(source)
    if path.is_file() and path.suffix.lower() == ".zip":
        return folder_images(unpack_zip(path, work_dir), class_names, preprocessing)
    if path.is_file() and path.suffix.lower() == ".csv":
        return csv_images(path, class_names, preprocessing)
    if path.is_dir():
        return folder_images(path, class_names, preprocessing)
    raise CamlabError(f"{text}: not a folder, a .zip, a .csv or generated:<variant>/<split>")


def attach_masks(images: ImageSet, source: str | Path, preprocessing: Preprocessing, work_dir: Path) -> ImageSet:
    """``images`` with each one's object mask from ``source`` (a folder or a zip mirroring the images'
    paths, see the module docstring); images without a readable mask of their own size move to
    ``skipped`` with the reason. None with a mask is an error."""
    if images.generated is not None or images.root is None:
        raise CamlabError("camlab's generated images bring their own masks; give masks only with your own images")
    image_root = images.root
    path = Path(source)
    if path.is_file() and path.suffix.lower() == ".zip":
        path = unpack_zip(path, work_dir / "masks")
    if not path.is_dir():
        raise CamlabError(f"{source}: the masks are a folder or a .zip mirroring the images' paths")
    root = path.resolve()
    items, skipped = [], list(images.skipped)
    for item in images.items:
        stem = Path(item.path).with_suffix("")
        candidates = [root / f"{stem}{suffix}" for suffix in (*IMAGE_SUFFIXES, *(s.upper() for s in IMAGE_SUFFIXES))]
        found = next((c for c in candidates if c.is_file() and c.resolve().is_relative_to(root)), None)
        if found is None:
            skipped.append((item.path, f"no mask {stem}.png (or another image suffix) in {path.name}/"))
            continue
        try:
            if found.stat().st_size > MAX_IMAGE_BYTES:
                raise CamlabError(f"the mask is over the {MAX_IMAGE_BYTES // 2**20} MiB limit")
            data = found.read_bytes()
            read_mask(data, preprocessing.size, preprocessing.crop_fraction,
                      image_size=picture_size((image_root / item.path).read_bytes()))
        except CamlabError as exc:
            skipped.append((item.path, f"its mask {found.relative_to(root).as_posix()}: {exc}"))
            continue
        except OSError as exc:
            skipped.append((item.path, f"its mask cannot be read ({type(exc).__name__})"))
            continue
        items.append(replace(item, mask=found.relative_to(root).as_posix(), mask_sha256=hashlib.sha256(data).hexdigest()))
    if not items:
        raise CamlabError(f"none of the {len(images.items)} images has a readable mask in {path.name}/ (the mask of "
                          f"{images.items[0].path} would be {Path(images.items[0].path).with_suffix('.png')})")
    return replace(images, items=items, skipped=skipped, mask_root=root,
                   description=f"{images.description}, with object masks from {path.name}/")


class AuditImages(Dataset):
    """The readable images as the model takes them: items ``(image, label)`` (label -1 when
    unlabelled), or ``(image, label, mask)`` for generated data and images with masks."""

    def __init__(self, images: ImageSet, preprocessing: Preprocessing) -> None:
        self.images, self.preprocessing = images, preprocessing

    def __len__(self) -> int:
        return len(self.images.items)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int] | tuple[torch.Tensor, int, torch.Tensor]:
        if self.images.generated is not None:
            return self.images.generated[index]
        item, root = self.images.items[index], self.images.root
        if root is None:
            raise CamlabError("an image set is either generated or read from a folder")
        data = (root / item.path).read_bytes()
        image = read_image(data, self.preprocessing.size, self.preprocessing.crop_fraction)[0]
        label = -1 if item.label is None else item.label
        if self.images.mask_root is None:
            return image, label
        mask = read_mask((self.images.mask_root / item.mask).read_bytes(), self.preprocessing.size,
                         self.preprocessing.crop_fraction)
        return image, label, mask
