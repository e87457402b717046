"""Metrics, split by what they need:

- :mod:`~camlab.metrics.leakage`: maps and a region only (share of a map inside a region);
- :mod:`~camlab.metrics.similarity`: two maps (rank correlation, gradient distance);
- :mod:`~camlab.metrics.faithfulness`: runs the model on map-changed images (Drop/Increase, RISE);
- :mod:`~camlab.metrics.sanity`: runs the explainer on randomised models.
"""
from .faithfulness import MASKING_SPACES, confidence_metrics, insertion_deletion
from .leakage import SHARES, downsample_region, layer_region_shares, region_shares
from .sanity import cascading_randomisation
from .similarity import gradient_distance, spearman

__all__ = [
    "MASKING_SPACES", "SHARES", "cascading_randomisation", "confidence_metrics", "downsample_region",
    "gradient_distance", "insertion_deletion", "layer_region_shares", "region_shares", "spearman",
]
