"""Running a model in eval mode for a moment without changing the mode it is left in."""
from __future__ import annotations

import contextlib
from collections.abc import Iterator

from torch import nn


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Eval mode for the duration; afterwards every module gets back its *own* mode.

    ``model.train(was_training)`` would not do: it gives every submodule the top module's flag, so a
    wrapper built in train mode (a fresh ``nn.Module``) around an eval model would switch the shared
    model's batch norms to batch statistics, and its next forward would overwrite their running means.
    """
    modes = [(module, module.training) for module in model.modules()]
    changed = any(training for _, training in modes)
    try:
        if changed:  # model.eval() walks every module again: skipped for a model already in eval mode
            model.eval()
        yield model
    finally:
        if changed:
            for module, training in modes:
                module.training = training
