"""Walls: what a model cannot see or use, computed, drawn or imposed.

- :func:`unseen_region`: the input pixels a model's output provably cannot depend on;
- :func:`wall_mask` / :func:`check_wall`: drawn shapes as one boolean pixel mask;
- :class:`BlindModel`: a model whose input pixels behind a wall are replaced (occlusion).
"""
from .occlusion import FILLS, BlindModel
from .regions import check_wall, wall_mask
from .unseen import unseen_region

__all__ = ["FILLS", "BlindModel", "check_wall", "unseen_region", "wall_mask"]
