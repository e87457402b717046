"""The paper study: "CAM-based methods can see through walls" and its companions, rebuilt on
data and models camlab makes itself.

- :mod:`~camlab.study.wallvgg`: the walled VGG, its unwalled twin, camlab checkpoints;
- :mod:`~camlab.study.wallresnet`, :mod:`~camlab.study.wallvit`: a walled ResNet and ViT and their twins;
- :mod:`~camlab.study.data`: the generated stacked datasets;
- :mod:`~camlab.study.train`: training, with the interpretable-gradients regulariser;
- :mod:`~camlab.study.theory`: the one-conv-layer walled CNN at random initialisation;
- :mod:`~camlab.study.table1`: Table 1 (leakage in the unseen region) on the shipped models;
- :mod:`~camlab.study.evaluate`: the evaluation command.
The study uses the library; the library never imports the study.
"""
from .wallvgg import WallVGG, WallVGGConfig, load_checkpoint, save_checkpoint

__all__ = ["WallVGG", "WallVGGConfig", "load_checkpoint", "save_checkpoint"]
