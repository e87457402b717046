"""Benchmark camlab against pytorch-grad-cam on the same model and images, in one run.

    python -m camlab.bench                 # VGG16 (random weights), 224x224, batch 1, CPU
    python -m camlab.bench --skip-scorecam # only the shared-pass comparison

(a) the six shared-pass CAMs in one camlab call vs six separate grad-cam calls;
(b) Score-CAM vs grad-cam's ScoreCAM.
Prints median seconds and the speed-up ratios. Needs the test extras (grad-cam).
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
import torchvision

from ..engine import explain
from ..methods import SHARED_PASS_CAMS


def _timed(fn, repeats: int, warm_up: bool = True) -> float:
    if warm_up:  # allocator, oneDNN primitive caches
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv=None) -> None:
    from pytorch_grad_cam import EigenCAM, GradCAM, GradCAMPlusPlus, HiResCAM, LayerCAM, ScoreCAM, XGradCAM

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--skip-scorecam", action="store_true")
    parser.add_argument("--chunk-size", type=int, default=64)
    args = parser.parse_args(argv)

    torch.manual_seed(0)
    device = torch.device(args.device)
    model = torchvision.models.vgg16(weights=None).eval().to(device)
    images = torch.rand(args.batch, 3, args.size, args.size, device=device)
    layer_name, layer = "features.29", model.features[29]
    references = [GradCAM, GradCAMPlusPlus, XGradCAM, LayerCAM, HiResCAM, EigenCAM]

    def grad_cam_six():
        for cls in references:
            with cls(model=model, target_layers=[layer]) as cam:
                cam(images, targets=None)

    ours = _timed(lambda: explain(model, images, SHARED_PASS_CAMS, target_layer=layer_name), args.repeats)
    theirs = _timed(grad_cam_six, args.repeats)
    print(f"(a) six CAMs ({', '.join(SHARED_PASS_CAMS)}), VGG16 {args.size}px batch {args.batch} on {device}:")
    print(f"    camlab {ours:.3f} s   grad-cam {theirs:.3f} s   ratio {theirs / ours:.1f}x")

    if not args.skip_scorecam:
        def grad_cam_score():
            with ScoreCAM(model=model, target_layers=[layer]) as cam:
                cam.batch_size = 16  # grad-cam's default
                cam(images, targets=None)

        # One run each: 512 VGG16 forwards per image are minutes on a small CPU; part (a) warmed up.
        ours = _timed(lambda: explain(model, images, ["scorecam"], target_layer=layer_name,
                                      chunk_size=args.chunk_size), 1, warm_up=False)
        theirs = _timed(grad_cam_score, 1, warm_up=False)
        print(f"(b) Score-CAM: camlab {ours:.2f} s   grad-cam {theirs:.2f} s   ratio {theirs / ours:.1f}x")


if __name__ == "__main__":
    main()
