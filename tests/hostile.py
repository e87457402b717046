"""What a hostile visitor sends: a TorchScript archive that writes a file when loaded, and names
that would fetch a URL, link or style the page if they reached Markdown unescaped."""
from pathlib import Path

import torch

# Each would do something if rendered as Markdown: fetch an image, make a link, colour text, run
# LaTeX, start a heading, show an icon, put raw HTML in the page.
HOSTILE_NAMES = [
    "![x](http://127.0.0.1:9/pixel.png)",
    "[click](http://127.0.0.1:9/)",
    ":red[alarm] :material/warning: :smile:",
    "$\\int x$ **bold** _it_ `code`",
    "# heading\n<img src=x onerror=alert(1)>",
]

# Eight printable class names (a checkpoint's names may not hold line breaks) for a hostile checkpoint.
HOSTILE_CLASS_NAMES = [name.replace("\n", " ") for name in HOSTILE_NAMES] + [
    "![a](http://127.0.0.1:9/a.png)", "[b](javascript:alert(1))", ":blue-background[c]"]


def hostile_checkpoint(path: Path) -> bytes:
    """A small walled VGG (32x32 input) saved at ``path`` with :data:`HOSTILE_CLASS_NAMES`."""
    from camlab.study.wallvgg import masked_vgg, save_checkpoint

    torch.manual_seed(0)
    save_checkpoint(path, masked_vgg(width=1 / 64, input_size=32, masked_rows=1, hidden=8), "masked_vgg",
                    HOSTILE_CLASS_NAMES)
    return path.read_bytes()


class _WritesAFile(torch.nn.Module):
    """Its ``__setstate__``, compiled into the archive, creates ``path`` whenever the archive is loaded."""

    def __init__(self, path: str):
        super().__init__()
        self.path = path

    @torch.jit.export
    def __getstate__(self) -> tuple[str, bool]:
        return (self.path, self.training)

    @torch.jit.export
    def __setstate__(self, state: tuple[str, bool]) -> None:
        self.path = state[0]
        made = torch.from_file(self.path, shared=True, size=16)  # creates the file on the loading machine
        self.training = state[1] and bool(made.numel() > 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * 2


def file_writing_archive(archive: Path, victim: Path) -> bytes:
    """A TorchScript archive at ``archive`` that creates ``victim`` when ``torch.jit.load`` reads it."""
    torch.jit.script(_WritesAFile(str(victim))).save(str(archive))
    return archive.read_bytes()
