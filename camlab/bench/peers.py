"""Benchmark camlab against pytorch-grad-cam, torchcam and captum on the same model and images, in one run.

    camlab-bench                      # VGG16 (random weights), 224x224, batch 1, CPU
    camlab-bench --skip-scorecam      # all but (c), Score-CAM
    camlab-bench --sections g         # only (g), one method on three architectures
    camlab-bench --device cuda        # times are taken after torch.cuda.synchronize()

(a) the six shared-pass CAMs in one camlab call vs six grad-cam calls;
(b) the four gradient CAMs all three libraries have (Grad-CAM, Grad-CAM++, XGrad-CAM, Layer-CAM):
    one camlab call vs four grad-cam calls vs four torchcam calls;
(c) Score-CAM in each library;
(d) each method camlab took from grad-cam (Element-wise Grad-CAM, Eigen-Grad-CAM, FEM, KPCA-CAM,
    ShapleyCAM, Finer-CAM, FullGrad), one method per call in each library, with its agreement
    (principal components up to their sign);
(e) SS-CAM and IS-CAM against torchcam (``--samples`` noisy or integrated copies, torchcam's noise
    seeded as camlab's), Integrated Gradients and SmoothGrad against captum, with their agreement;
(f) RefineCAM against torchcam and grad-cam, Grad-CAM's aug_smooth against grad-cam's, LeGrad against
    torchcam on vit_b_16;
(g) what a user asking for one method waits for, on ResNet18, ResNet50 and VGG16 at batch 1 and 8: one
    Grad-CAM in camlab, torchcam, captum (LayerGradCam) and grad-cam, with the agreement of the maps,
    then the four CAMs of (b): one camlab call against four torchcam and four grad-cam calls.
With (b), the agreement of every compared map: the largest absolute difference between camlab's and the
peer's map for the same image and class (display maps for grad-cam; layer-resolution maps after
ReLU and min-max for torchcam, which returns those). Needs the test extras (grad-cam, torchcam).
"""
from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, cast

import torch
import torchvision

from ..engine import CAMMap, explain
from ..errors import CamlabError
from ..maps import layer_map_to_display, minmax
from ..methods import SHARED_PASS_CAMS
from ..models import random_torchvision

COMMON_GRADIENT_CAMS = ("gradcam", "gradcam++", "xgradcam", "layercam")
FROM_GRAD_CAM = ("gradcamelementwise", "eigengradcam", "fem", "kpcacam", "shapleycam", "finercam", "fullgrad")
# camlab's method -> the pytorch-grad-cam class that implements it (by name: grad-cam is a bench and test
# dependency, not camlab's); the bench and tests/methods/test_peer_agreement.py compare against these
GRAD_CAM_CLASSES = {
    "gradcam": "GradCAM", "gradcam++": "GradCAMPlusPlus", "xgradcam": "XGradCAM", "layercam": "LayerCAM",
    "hirescam": "HiResCAM", "eigencam": "EigenCAM", "scorecam": "ScoreCAM", "ablationcam": "AblationCAM",
    "gradcamelementwise": "GradCAMElementWise", "eigengradcam": "EigenGradCAM", "fem": "FEM", "kpcacam": "KPCA_CAM",
    "shapleycam": "ShapleyCAM", "finercam": "FinerCAM", "fullgrad": "FullGrad",
}
# camlab's method -> the torchcam class that implements it, by name as above
TORCHCAM_CLASSES = {"gradcam": "GradCAM", "gradcam++": "GradCAMpp", "xgradcam": "XGradCAM", "layercam": "LayerCAM",
                    "scorecam": "ScoreCAM"}
# principal components: grad-cam keeps LAPACK's (or scikit-learn's) sign, camlab orients them
SIGN_FREE = {"eigencam", "eigengradcam", "kpcacam"}

# Where torchcam 0.5.0 defines a method differently, so its maps cannot agree with camlab's or grad-cam's:
TORCHCAM_DIFFERS = {
    "gradcam++": "its alpha divides a boolean-indexed copy in place, so alpha stays grad² "
                 "(weights Σ grad²·ReLU(grad)); the paper's denominator is never applied",
    "scorecam": "its masks are normalised at the layer's resolution and upsampled with half-pixel centres; "
                "grad-cam's (and camlab's scorecam) are upsampled with aligned corners, then normalised — "
                "camlab's sscam with samples=1, noise=0 is torchcam's Score-CAM",
}


T = TypeVar("T")


def _synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn: Callable[[], object], device: torch.device, repeats: int, warm_up: bool = True) -> float:
    """Median wall time of ``fn`` over ``repeats`` runs, the device drained before and after each."""
    if warm_up:  # allocator, oneDNN primitive caches, cuDNN autotuning
        fn()
    return statistics.median([_once(fn, device)[0] for _ in range(repeats)])


def _timed_together(fns: dict[str, Callable[[], object]], device: torch.device, repeats: int) -> dict[str, float]:
    """Median wall time of each of ``fns``, their runs interleaved (one run of each per round, the order
    rotated every round), so a machine that slows down for a while slows every library alike."""
    names = list(fns)
    for name in names:  # warm-up
        fns[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    for round_index in range(repeats):
        for name in names[round_index % len(names):] + names[:round_index % len(names)]:
            times[name].append(_once(fns[name], device)[0])
    return {name: statistics.median(values) for name, values in times.items()}


def _once(fn: Callable[[], T], device: torch.device) -> tuple[float, T]:
    """One run of ``fn``: its wall time, the device drained before and after, and its result."""
    _synchronise(device)
    start = time.perf_counter()
    result = fn()
    _synchronise(device)
    return time.perf_counter() - start, result


def _grad_cam_map(model: torch.nn.Module, layer: torch.nn.Module, images: torch.Tensor, method: str,
                  chunk_size: int) -> torch.Tensor:
    """grad-cam's display maps of ``method`` for ``images``' top classes, one call as its users make it."""
    import pytorch_grad_cam

    with getattr(pytorch_grad_cam, GRAD_CAM_CLASSES[method])(model=model, target_layers=[layer]) as cam:
        if method == "scorecam":
            cam.batch_size = chunk_size
        return torch.from_numpy(cam(images, targets=None))


def _torchcam_map(model: torch.nn.Module, layer_name: str, images: torch.Tensor, method: str, classes: list[int],
                  chunk_size: int) -> torch.Tensor:
    """The layer maps torchcam returns of ``method`` for ``classes``, its forward included, one call as its users make it."""
    from torchcam import methods as torchcam

    options = {"batch_size": chunk_size} if method == "scorecam" else {}
    with getattr(torchcam, TORCHCAM_CLASSES[method])(model, layer_name, input_shape=tuple(images.shape[1:]),
                                                    **options) as cam:
        return cam(classes, model(images))[0]


def _display(raw: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """A signed layer map as grad-cam displays it (ReLU, upsampled, min-max), on the CPU."""
    return layer_map_to_display(raw, (int(size[0]), int(size[1]))).cpu()


def _layer_maps(raw: torch.Tensor) -> torch.Tensor:
    """Camlab's signed layer map as torchcam returns it: ReLU, then min-max per image."""
    return minmax(raw.clamp(min=0))


def main(argv: Sequence[str] | None = None) -> None:
    """``camlab-bench``: camlab against grad-cam, torchcam and captum in one run."""
    args, sections = _arguments(argv)
    torch.manual_seed(0)
    device = torch.device(args.device)
    model = torchvision.models.vgg16(weights=None).eval().to(device)
    images = torch.rand(args.batch, 3, args.size, args.size, device=device)
    layer_name = "features.29"
    layer = model.get_submodule(layer_name)

    def grad_cam(method: str) -> torch.Tensor:
        return _grad_cam_map(model, layer, images, method, args.chunk_size)

    def torchcam_map(method: str, classes: list[int]) -> torch.Tensor:
        return _torchcam_map(model, layer_name, images, method, classes, args.chunk_size)

    ours = explain(model, images, list(SHARED_PASS_CAMS), target_layer=layer_name)
    if ours.classes is None:
        raise CamlabError("camlab explained no classes")
    classes = ours.classes.tolist()
    print(f"VGG16 (random weights), {args.size}px, batch {args.batch}, {device}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads; median of {args.repeats} after a warm-up")

    if "a" in sections:
        camlab_six = _timed(lambda: explain(model, images, SHARED_PASS_CAMS, target_layer=layer_name), device,
                            args.repeats)
        grad_cam_six = _timed(lambda: [grad_cam(m) for m in SHARED_PASS_CAMS], device, args.repeats)
        print(f"(a) six CAMs ({', '.join(SHARED_PASS_CAMS)}): camlab {camlab_six:.3f} s, "
              f"grad-cam {grad_cam_six:.3f} s ({grad_cam_six / camlab_six:.1f}x)")

    if "b" in sections:
        camlab_four = _timed(lambda: explain(model, images, COMMON_GRADIENT_CAMS, target_layer=layer_name), device,
                             args.repeats)
        grad_cam_four = _timed(lambda: [grad_cam(m) for m in COMMON_GRADIENT_CAMS], device, args.repeats)
        torchcam_four = _timed(lambda: [torchcam_map(m, classes) for m in COMMON_GRADIENT_CAMS], device,
                               args.repeats)
        print(f"(b) four CAMs ({', '.join(COMMON_GRADIENT_CAMS)}): camlab {camlab_four:.3f} s, "
              f"grad-cam {grad_cam_four:.3f} s ({grad_cam_four / camlab_four:.1f}x), "
              f"torchcam {torchcam_four:.3f} s ({torchcam_four / camlab_four:.1f}x)")

    maps: dict[str, Any] = {}  # Score-CAM's results: camlab's CAMMap and the peers' arrays
    compared: list[str] = list(COMMON_GRADIENT_CAMS)
    if "c" in sections:
        # One run each: 512 VGG16 forwards per image are minutes on a small CPU; (a) and (b) warmed up.
        score = {
            "camlab": _timed(lambda: maps.update(camlab=explain(model, images, ["scorecam"], target_layer=layer_name,
                                                                chunk_size=args.chunk_size)["scorecam"]),
                             device, 1, warm_up=False),
            "grad-cam": _timed(lambda: maps.update(grad_cam=grad_cam("scorecam")), device, 1, warm_up=False),
            "torchcam": _timed(lambda: maps.update(torchcam=torchcam_map("scorecam", classes)), device, 1,
                               warm_up=False),
        }
        print(f"(c) Score-CAM, {args.chunk_size} masked images per forward: camlab {score['camlab']:.2f} s, "
              f"grad-cam {score['grad-cam']:.2f} s ({score['grad-cam'] / score['camlab']:.1f}x), "
              f"torchcam {score['torchcam']:.2f} s ({score['torchcam'] / score['camlab']:.1f}x)")
        ours.maps["scorecam"] = maps["camlab"]
        compared.append("scorecam")
    peer_maps = {"scorecam": (maps["grad_cam"], maps["torchcam"])} if "c" in sections else {}

    later_sections = {
        "d": lambda: _taken_from_grad_cam(model, images, layer_name, grad_cam, args, device),
        "e": lambda: _sampled_methods(model, images, layer_name, classes, args, device),
        "f": lambda: _layers_augmentations_attention(model, images, layer_name, classes, args, device),
        "g": lambda: _one_method_per_architecture(args, device),
    }
    for section in sorted(sections & later_sections.keys()):
        later_sections[section]()
    if "b" in sections:
        print("agreement, largest |camlab − peer| over the batch:")
        for method in compared:
            display, layer_maps = peer_maps.get(method) or (grad_cam(method), torchcam_map(method, classes))
            _print_agreement(method, ours[method], display, layer_maps)


def _print_agreement(method: str, ours: CAMMap, display: torch.Tensor, layer_maps: torch.Tensor) -> None:
    """One row of the agreement: camlab's display map against grad-cam's, its layer map against torchcam's."""
    vs_grad_cam = (ours.display.cpu() - display).abs().max().item()
    vs_torchcam = (_layer_maps(ours.raw) - layer_maps).abs().max().item()
    note = f"  (torchcam differs by definition: {TORCHCAM_DIFFERS[method]})" if method in TORCHCAM_DIFFERS else ""
    print(f"    {method:10s} grad-cam {vs_grad_cam:.1e}   torchcam {vs_torchcam:.1e}{note}")


def _arguments(argv: Sequence[str] | None) -> tuple[argparse.Namespace, set[str]]:
    """The command line, and the sections it asks for."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--skip-scorecam", action="store_true")
    parser.add_argument("--chunk-size", type=int, default=64)
    parser.add_argument("--samples", type=int, default=2, help="copies per image for SS-CAM, IS-CAM, IG, SmoothGrad")
    parser.add_argument("--sections", default="abcdefg", help="the sections to run, e.g. 'ab' or 'g'")
    args = parser.parse_args(argv)
    sections = set(args.sections) - ({"c"} if args.skip_scorecam else set())
    if not sections or not sections <= set("abcdefg"):
        parser.error(f"--sections takes letters of 'abcdefg', got {args.sections!r}")
    return args, sections


def _taken_from_grad_cam(model: torch.nn.Module, images: torch.Tensor, layer_name: str,
                         grad_cam: Callable[[str], torch.Tensor], args: argparse.Namespace,
                         device: torch.device) -> None:
    """(d): each method camlab took from grad-cam, one method per call in each library."""
    for method in FROM_GRAD_CAM:
        alone = _timed(lambda m=method: explain(model, images, [m], target_layer=layer_name), device, args.repeats)
        peer = _timed(lambda m=method: grad_cam(m), device, args.repeats)
        mine = explain(model, images, [method], target_layer=layer_name)[method]
        theirs = grad_cam(method)
        candidates = [mine.display.cpu()] + ([_display(-mine.raw, images.shape[-2:])] if method in SIGN_FREE else [])
        gap = min((candidate - theirs).abs().max().item() for candidate in candidates)
        print(f"(d) {method}: camlab {alone:.3f} s, grad-cam {peer:.3f} s ({peer / alone:.1f}x), "
              f"agreement {gap:.1e}{' (up to the sign)' if method in SIGN_FREE else ''}")


def _sampled_methods(model: torch.nn.Module, images: torch.Tensor, layer_name: str, classes: list[int],
                     args: argparse.Namespace, device: torch.device) -> None:
    """(e): the methods whose peer is torchcam or captum, ``args.samples`` copies per image, one run each
    for the per-channel ones (1 + samples x channels forwards per image)."""
    from captum.attr import IntegratedGradients, NoiseTunnel, Saliency
    from torchcam import methods as torchcam

    samples, shape = args.samples, tuple(images.shape[1:])
    seeded = {"sscam": {"samples": samples, "seed": 0}, "iscam": {"samples": samples}}
    peers = {"sscam": (torchcam.SSCAM, {"num_samples": samples}), "iscam": (torchcam.ISCAM, {"num_samples": samples})}
    for method, (cls, peer_options) in peers.items():
        mine, ours = _once(lambda m=method: explain(model, images, [m], target_layer=layer_name,
                                                    chunk_size=args.chunk_size, options={m: seeded[m]})[m].raw,
                           device)

        def torchcam_map(c: Any = cls, o: dict = peer_options) -> torch.Tensor:
            with c(model, layer_name, input_shape=shape, batch_size=args.chunk_size, **o) as cam, torch.no_grad():
                scores = model(images)
                torch.manual_seed(0)  # torchcam draws SS-CAM's noise from the global generator
                return cam(classes, scores)[0]

        peer, theirs = _once(torchcam_map, device)
        gap = (_layer_maps(ours).cpu() - theirs.cpu()).abs().max().item()
        print(f"(e) {method}, {samples} samples: camlab {mine:.2f} s, torchcam {peer:.2f} s ({peer / mine:.1f}x), "
              f"agreement {gap:.1e}")
    target = torch.tensor(classes, device=device)
    spread = float((images.flatten(1).amax(1) - images.flatten(1).amin(1))[0])
    captum_runs = {
        "integrated_gradients": (
            {"steps": samples},
            lambda: IntegratedGradients(model).attribute(images, target=target, n_steps=samples)),
        "smoothgrad": (
            {"samples": samples, "noise": 0.15},
            lambda: NoiseTunnel(Saliency(model)).attribute(images, nt_type="smoothgrad", nt_samples=samples,
                                                           stdevs=0.15 * spread, target=target, abs=False)),
    }
    for method, (options, peer_run) in captum_runs.items():
        mine = _timed(lambda m=method, o=options: explain(model, images, [m], target_layer=layer_name,
                                                          options={m: o}), device, args.repeats)
        peer = _timed(peer_run, device, args.repeats)
        raw = explain(model, images, [method], target_layer=layer_name, options={method: options})[method].raw
        torch.manual_seed(0)
        reference = peer_run()
        gap = ((raw - reference).abs().max() / reference.abs().max()).item()
        print(f"(e) {method}, {samples} samples: camlab {mine:.3f} s, captum {peer:.3f} s ({peer / mine:.1f}x), "
              f"agreement {gap:.1e} of the largest value")


REFINE_LAYERS = ("features.15", "features.22", "features.29")  # camlab's default for VGG16's features.29


def _layers_augmentations_attention(model: torch.nn.Module, images: torch.Tensor, layer_name: str,
                                    classes: list[int], args: argparse.Namespace, device: torch.device) -> None:
    """(f): RefineCAM against torchcam (Layer-CAM base: torchcam's Grad-CAM++ differs) and grad-cam,
    Grad-CAM with aug_smooth against grad-cam's, and LeGrad against torchcam on a random vit_b_16."""
    import pytorch_grad_cam
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
    from torchcam import methods as torchcam

    shape = tuple(images.shape[1:])
    refine = {"refinecam": {"base": "layercam"}}
    mine = _timed(lambda: explain(model, images, ["refinecam"], target_layer=layer_name, options=refine), device,
                  args.repeats)
    ours = explain(model, images, ["refinecam"], target_layer=layer_name, options=refine)["refinecam"]

    def torchcam_refine() -> torch.Tensor:
        with torchcam.RefineCAM(model, list(REFINE_LAYERS), input_shape=shape, base_method=torchcam.LayerCAM) as cam:
            return cam(classes, model(images))[0]

    def grad_cam_refine() -> object:
        cam = pytorch_grad_cam.RefineCAM(model, [model.get_submodule(n) for n in REFINE_LAYERS],
                                         base_method=cast(Any, pytorch_grad_cam.LayerCAM))  # typed as Grad-CAM++'s
        try:
            return cam(images, targets=None)
        finally:
            for base in cam.base_cam_per_layer:
                base.activations_and_grads.release()

    peer = _timed(torchcam_refine, device, args.repeats)
    other = _timed(grad_cam_refine, device, args.repeats)
    gap = (_layer_maps(ours.raw).cpu() - torchcam_refine().cpu()).abs().max().item()
    print(f"(f) refinecam (Layer-CAM base, {', '.join(REFINE_LAYERS)}): camlab {mine:.3f} s, torchcam {peer:.3f} s "
          f"({peer / mine:.1f}x, agreement {gap:.1e}), grad-cam {other:.3f} s ({other / mine:.1f}x; it multiplies "
          "at the input's resolution)")

    smooth = {"gradcam": {"aug_smooth": True}}
    mine = _timed(lambda: explain(model, images, ["gradcam"], target_layer=layer_name, options=smooth), device,
                  args.repeats)

    def grad_cam_smooth() -> object:
        with pytorch_grad_cam.GradCAM(model, [model.get_submodule(layer_name)]) as cam:
            targets = cast(Any, [ClassifierOutputTarget(c) for c in classes])  # typed as modules; callables work
            return cam(images, targets=targets, aug_smooth=True)

    peer = _timed(grad_cam_smooth, device, args.repeats)
    print(f"(f) gradcam aug_smooth (6 augmentations): camlab {mine:.3f} s, grad-cam {peer:.3f} s ({peer / mine:.1f}x; "
          "camlab averages raw maps, grad-cam normalised ones)")

    vit = cast(torchvision.models.VisionTransformer, random_torchvision("vit_b_16", image_size=args.size))
    vit = vit.eval().to(device)  # a random head, not torchvision's 0
    vit_classes = vit(images).argmax(1).tolist()
    mine = _timed(lambda: explain(vit, images, ["legrad"]), device, args.repeats)
    ours = explain(vit, images, ["legrad"])["legrad"]

    def torchcam_legrad() -> torch.Tensor:
        blocks = cast(list[torch.nn.Module | str], list(vit.encoder.layers)[-4:])  # its hint: not list[Module]
        with torchcam.LeGrad(vit, blocks) as cam:
            return cam(vit_classes, vit(images))[0]

    peer = _timed(torchcam_legrad, device, args.repeats)
    gap = (_layer_maps(ours.raw).cpu() - torchcam_legrad().cpu()).abs().max().item()
    print(f"(f) legrad (vit_b_16, last 4 blocks): camlab {mine:.3f} s, torchcam {peer:.3f} s ({peer / mine:.1f}x), "
          f"agreement {gap:.1e}")


# (g)'s architectures and the layer every library explains (camlab's dry run finds the same ones)
ARCHITECTURES = {"resnet18": "layer4", "resnet50": "layer4", "vgg16": "features.29"}


def _one_method_per_architecture(args: argparse.Namespace, device: torch.device) -> None:
    """(g): one Grad-CAM, then the four CAMs of (b), in every library, at batch 1 and 8, the libraries' runs
    interleaved (:func:`_timed_together`)."""
    from captum.attr import LayerGradCam

    for architecture, layer_name in ARCHITECTURES.items():
        torch.manual_seed(0)
        model = getattr(torchvision.models, architecture)(weights=None).eval().to(device)
        layer = model.get_submodule(layer_name)
        for batch in (1, 8):
            images = torch.rand(batch, 3, args.size, args.size, device=device)
            mine = explain(model, images, ["gradcam"])  # the dry run finds layer_name, kept for the timed calls
            if mine.layer != layer_name or mine.classes is None:
                raise CamlabError(f"camlab explained {mine.layer} of {architecture}, not {layer_name}")
            classes = mine.classes.tolist()
            target = torch.tensor(classes, device=device)

            def torchcam_maps(methods: Sequence[str], m: torch.nn.Module = model, c: list[int] = classes,
                              x: torch.Tensor = images, n: str = layer_name) -> list:
                return [_torchcam_map(m, n, x, method, c, args.chunk_size) for method in methods]

            def grad_cam_maps(methods: Sequence[str], m: torch.nn.Module = model, x: torch.Tensor = images,
                              lay: torch.nn.Module = layer) -> list:
                return [_grad_cam_map(m, lay, x, method, args.chunk_size) for method in methods]

            def captum_map(m: torch.nn.Module = model, lay: torch.nn.Module = layer, x: torch.Tensor = images,
                           t: torch.Tensor = target) -> torch.Tensor:
                return cast(torch.Tensor, LayerGradCam(m, lay).attribute(x, target=t))  # one input, one tensor

            one = _timed_together({
                "camlab": lambda m=model, x=images: explain(m, x, ["gradcam"]),
                "torchcam": lambda: torchcam_maps(["gradcam"]),
                "captum": captum_map,
                "grad-cam": lambda: grad_cam_maps(["gradcam"]),
            }, device, args.repeats)
            raw = mine["gradcam"].raw
            gaps = {
                "torchcam": (_layer_maps(raw).cpu() - torchcam_maps(["gradcam"])[0].cpu()).abs().max().item(),
                "captum": ((raw - captum_map()[:, 0]).abs().max() / raw.abs().max()).item(),
                "grad-cam": (mine["gradcam"].display.cpu() - grad_cam_maps(["gradcam"])[0]).abs().max().item(),
            }
            print(f"(g) {architecture} ({layer_name}), batch {batch}, one Grad-CAM: camlab {one['camlab']:.3f} s, "
                  + ", ".join(f"{peer} {one[peer]:.3f} s ({one[peer] / one['camlab']:.2f}x, agreement {gaps[peer]:.1e})"
                              for peer in gaps))
            four = _timed_together({
                "camlab": lambda m=model, x=images: explain(m, x, COMMON_GRADIENT_CAMS),
                "torchcam": lambda: torchcam_maps(COMMON_GRADIENT_CAMS),
                "grad-cam": lambda: grad_cam_maps(COMMON_GRADIENT_CAMS),
            }, device, args.repeats)
            print(f"(g) {architecture}, batch {batch}, four CAMs: camlab {four['camlab']:.3f} s, "
                  + ", ".join(f"{peer} {four[peer]:.3f} s ({four[peer] / four['camlab']:.2f}x)"
                              for peer in ("torchcam", "grad-cam")))


if __name__ == "__main__":
    main()
