"""Walls: what a model cannot see or use, computed, drawn or imposed.

- :func:`unseen_region` / :func:`analyse_unseen_region`: the input pixels a model's output provably
  cannot depend on (and how that was established); :func:`analyse_unread_cells`: the same for the
  cells of a layer (a walled model's own wall, pixels behind it or not);
- :class:`FeatureWall`: the paper's wall on any CNN — cells of a layer the rest of the model cannot read;
  :class:`FeatureWallAnalyser`: the unseen region of many such walls on one layer, each in one backward pass;
- :func:`wall_mask` / :func:`check_wall`: drawn shapes as one boolean pixel mask;
- :class:`BlindModel`: a model whose input pixels behind a wall are replaced (occlusion).
"""
from .feature import FeatureWall, cell_footprint, snap_to_cells
from .occlusion import OCCLUSION_FILLS, BlindModel
from .regions import PAPER_WALL_FRACTION, check_wall, paper_wall, wall_mask
from .unseen import (
    FeatureWallAnalyser,
    UnreadCells,
    UnseenRegion,
    analyse_unread_cells,
    analyse_unseen_region,
    unseen_region,
)

__all__ = ["OCCLUSION_FILLS", "PAPER_WALL_FRACTION", "BlindModel", "FeatureWall", "FeatureWallAnalyser", "UnreadCells",
           "UnseenRegion", "analyse_unread_cells", "analyse_unseen_region", "cell_footprint", "check_wall", "paper_wall",
           "snap_to_cells", "unseen_region", "wall_mask"]
