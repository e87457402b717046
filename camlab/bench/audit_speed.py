"""How long an audit takes: ``camlab-bench-audit`` writes generated test images as class folders,
audits them with the shipped masked_vgg and five fast CAMs with every control and every metric group
an audit runs by default (ROAD only on request), and times the whole audit and the writing of its report.

    camlab-bench-audit --images 100 --out docs/results/audit_speed.json
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from ..audit import load_audit_model, open_images, run_audit, write_audit
from ..study.data import write_png_folder

METHODS = ["gradcam", "gradcam++", "xgradcam", "hirescam", "layercam"]


def main(argv: Sequence[str] | None = None) -> None:
    """``camlab-bench-audit``: one audit's time and its report (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--model", default="masked_vgg")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--out", default=None, help="a JSON file for the numbers")
    parser.add_argument("--report", default=None,
                        help="a folder to keep the audit's four files in (README's worked example is this audit)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="camlab-bench-audit-") as work:
        root = Path(work) / "images"
        write_png_folder(root, count=args.images, class_folders=True)
        model = load_audit_model(args.model)
        started = time.perf_counter()
        images = open_images(root, model.loaded.class_names, model.preprocessing, Path(work))
        result = run_audit(model, images, METHODS, batch_size=args.batch_size, progress=True)
        audited = time.perf_counter() - started
        written = time.perf_counter()
        write_audit(result, Path(args.report or Path(work) / "out"), "camlab-bench-audit")
        writing = time.perf_counter() - written
    report = {"images": args.images, "model": args.model, "methods": METHODS, "groups": list(result.config.groups),
              "steps": result.config.steps, "batch_size": args.batch_size, "audit_seconds": round(audited, 1),
              "report_seconds": round(writing, 2), "torch_threads": torch.get_num_threads(),
              "cpus": os.cpu_count(), "machine": platform.processor() or platform.machine()}
    print(json.dumps(report, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
