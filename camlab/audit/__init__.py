"""Audit your own model on your own images: the readouts of :mod:`camlab.readouts` with their
controls, leakage under a wall, the in-distribution check, and a report anyone can open.

    camlab-audit --model resnet50 --weights DEFAULT --images photos/ --methods gradcam hirescam --out audit/

This layer may import the library and the paper study (camlab's checkpoints and generated data);
the app's Audit page calls it.
"""
from .images import AuditImages, ImageItem, ImageSet, Preprocessing, attach_masks, open_images, unpack_zip
from .model import AuditModel, load_audit_model, preprocessing_for
from .report import audit_files, write_audit
from .run import AuditResult, Wall, parse_wall, run_audit

__all__ = ["AuditImages", "AuditModel", "AuditResult", "ImageItem", "ImageSet", "Preprocessing", "Wall", "attach_masks",
           "audit_files", "load_audit_model", "open_images", "preprocessing_for", "parse_wall", "run_audit", "unpack_zip",
           "write_audit"]
