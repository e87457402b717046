"""camlab's methods against the reference implementations pytorch-grad-cam, torchcam and captum."""
import copy

import pytest
import pytorch_grad_cam
import torch
from captum.attr import GuidedBackprop, IntegratedGradients, NoiseTunnel, Saliency
from torchcam import methods as torchcam

import camlab
from camlab.bench.peers import GRAD_CAM_CLASSES, SIGN_FREE, TORCHCAM_DIFFERS
from camlab.maps import layer_map_to_display, minmax
from tests.nets import TinyNet

REFERENCES = {method: getattr(pytorch_grad_cam, name) for method, name in GRAD_CAM_CLASSES.items()}
CASES = {"vgg16": "features.29", "resnet18": "layer4"}


# Score-CAM and Ablation-CAM cost one forward per (image, channel): 2048 per library on a batch of 4.
# Smaller inputs keep that CI-sized while the maps stay spatial (2x2 for both).
PERTURBATION = {"scorecam", "ablationcam"}
PERTURBATION_SIZE = {"vgg16": 32, "resnet18": 48}


def _images(arch, method, images64):
    size = PERTURBATION_SIZE[arch] if method in PERTURBATION else 64
    return images64 if size == 64 else torch.nn.functional.interpolate(images64, size=size, mode="bilinear")


# Finer-CAM differentiates y_c - y_j for near-tied classes: random VGG16 logits differ by ~1e-3, so its
# gradient is a float32 cancellation (1.3e-4 measured on VGG16 at 64x64; 4e-7 on ResNet18).
TOLERANCE = {"finercam": 3e-4}


@pytest.fixture(scope="module")
def ours(vgg16, resnet18, images64):
    models = {"vgg16": vgg16, "resnet18": resnet18}
    results = {}
    for arch, layer in CASES.items():
        fast = [m for m in REFERENCES if m not in PERTURBATION]
        results[arch] = camlab.explain(models[arch], images64, fast, target_layer=layer).maps
        slow = camlab.explain(models[arch], _images(arch, "scorecam", images64), sorted(PERTURBATION),
                              target_layer=layer)
        results[arch].update(slow.maps)
    return results


def _reference(cls, model, layer, images):
    with cls(model=model, target_layers=[model.get_submodule(layer)]) as cam:
        if hasattr(cam, "batch_size"):
            cam.batch_size = 64
        return torch.from_numpy(cam(images, targets=None))


@pytest.mark.parametrize("arch", CASES)
@pytest.mark.parametrize("method", [m for m in REFERENCES if m not in SIGN_FREE])
def test_display_maps_match_grad_cam(arch, method, ours, vgg16, resnet18, images64):
    model = {"vgg16": vgg16, "resnet18": resnet18}[arch]
    images = _images(arch, method, images64)
    reference = _reference(REFERENCES[method], model, CASES[arch], images)
    result = ours[arch][method]
    assert result.display.shape == reference.shape == (4, *images.shape[-2:])
    assert (result.display - reference).abs().max() < TOLERANCE.get(method, 1e-4)


@pytest.mark.parametrize("arch", CASES)
@pytest.mark.parametrize("method", sorted(SIGN_FREE))
def test_principal_components_match_grad_cam_up_to_the_arbitrary_sign(arch, method, ours, vgg16, resnet18, images64):
    """pytorch-grad-cam keeps the decomposition's sign; camlab orients Eigen-CAM and KPCA-CAM along
    the activation energy and Eigen-Grad-CAM along HiRes-CAM's map (the same products summed)."""
    model = {"vgg16": vgg16, "resnet18": resnet18}[arch]
    reference = _reference(REFERENCES[method], model, CASES[arch], images64)
    raw = ours[arch][method].raw
    for i in range(len(images64)):
        candidates = [layer_map_to_display(sign * raw[i : i + 1], (64, 64))[0] for sign in (1, -1)]
        assert min(float((c - reference[i]).abs().max()) for c in candidates) < 1e-4
    along = (ours[arch]["hirescam"].raw.flatten(1) if method == "eigengradcam"
             else model_activations_energy(model, CASES[arch], images64))
    correlation = ((raw.flatten(1) - raw.flatten(1).mean(1, keepdim=True))
                   * (along - along.mean(1, keepdim=True))).sum(1)
    assert (correlation >= 0).all()


def test_element_wise_grad_cam_is_layer_cam_after_a_relu_and_differs_before_one(vgg16, resnet18, images64):
    """ReLU(grad x act) = ReLU(grad) x act when act >= 0 (VGG16's features.29 is a ReLU); a
    convolution's output (ResNet18's layer4.1.conv2, read by a batch norm, not an in-place ReLU) has
    negative activations, where the two differ."""
    both = ["gradcamelementwise", "layercam"]
    after = camlab.explain(vgg16, images64, both, target_layer="features.29")
    assert torch.equal(after["gradcamelementwise"].raw, after["layercam"].raw)
    before = camlab.explain(resnet18, images64, both, target_layer="layer4.1.conv2")
    assert (before["gradcamelementwise"].raw - before["layercam"].raw).abs().max() > 1e-3


def model_activations_energy(model, layer, images):
    store = []
    handle = model.get_submodule(layer).register_forward_hook(lambda m, i, o: store.append(o.detach().clone()))
    with torch.no_grad():
        model(images)
    handle.remove()
    return store[0].sum(1).flatten(1)


@pytest.mark.parametrize("arch", CASES)
def test_guided_backprop_matches_captum_on_a_batch(arch, vgg16, resnet18, images64):
    model = {"vgg16": vgg16, "resnet18": resnet18}[arch]
    result = camlab.explain(model, images64, ["guided_backprop"], target_layer=CASES[arch])
    classes = result.classes
    reference = GuidedBackprop(model).attribute(images64.clone().requires_grad_(), target=classes)
    raw = result["guided_backprop"].raw
    assert raw.shape == images64.shape
    scale = reference.abs().max()
    assert ((raw - reference).abs().max() / scale) < 1e-5


def test_vanilla_gradient_matches_autograd(resnet18, images64):
    result = camlab.explain(resnet18, images64, ["gradient"], targets=3)
    x = images64.clone().requires_grad_()
    (expected,) = torch.autograd.grad(resnet18(x)[:, 3].sum(), x)
    assert torch.allclose(result["gradient"].raw, expected, atol=1e-6)


@pytest.mark.parametrize("rule", ["gausslegendre", "riemann_left", "riemann_right", "riemann_middle"])
def test_integrated_gradients_match_captum(rule, resnet18, images64):
    options = {"integrated_gradients": {"rule": rule, "steps": 12, "baseline": 0.25}}
    result = camlab.explain(resnet18, images64, ["integrated_gradients"], options=options, chunk_size=20)
    reference = IntegratedGradients(resnet18).attribute(images64, baselines=0.25, target=result.classes,
                                                        n_steps=12, method=rule)
    raw = result["integrated_gradients"].raw
    assert raw.shape == images64.shape
    # In L1: captum's float32 linspace moves the left rule's points by ~1e-8, enough to flip a near-tied
    # max-pool in one image on some CPUs (there: 3e-5 in L1, 8e-4 of the largest value; else 0).
    assert (raw - reference).abs().sum() / reference.abs().sum() < 1e-4


def test_captums_trapezoid_rule_integrates_to_n_minus_one_over_n(resnet18, images64):
    """Captum 0.9's trapezoid takes steps of 1/n with halved ends at n points of linspace(0, 1): its
    weights sum to (n-1)/n, so its attributions are camlab's exact trapezoid times (n-1)/n."""
    options = {"integrated_gradients": {"rule": "riemann_trapezoid", "steps": 8}}
    result = camlab.explain(resnet18, images64, ["integrated_gradients"], options=options)
    reference = IntegratedGradients(resnet18).attribute(images64, target=result.classes, n_steps=8,
                                                        method="riemann_trapezoid")
    raw = result["integrated_gradients"].raw
    assert (raw * 7 / 8 - reference).abs().max() / reference.abs().max() < 1e-5
    assert (raw - reference).abs().max() / reference.abs().max() > 1e-2


def test_smoothgrad_is_captums_noise_tunnel_with_the_same_seed(resnet18, images64):
    """Noise scaled by each image's range; images made to span exactly [-1, 1] so one captum stdev fits all."""
    images = images64.clamp(-1, 1)
    images[:, :, 0, 0], images[:, :, 0, 1] = -1.0, 1.0
    options = {"smoothgrad": {"samples": 6, "noise": 0.2, "seed": 7}}
    result = camlab.explain(resnet18, images, ["smoothgrad"], options=options, chunk_size=4)
    torch.manual_seed(7)
    reference = NoiseTunnel(Saliency(resnet18)).attribute(images, nt_type="smoothgrad", nt_samples=6, stdevs=0.4,
                                                          target=result.classes, abs=False)
    assert (result["smoothgrad"].raw - reference).abs().max() / reference.abs().max() < 1e-5


TORCHCAM = {"gradcam": torchcam.GradCAM, "gradcam++": torchcam.GradCAMpp, "xgradcam": torchcam.XGradCAM,
            "layercam": torchcam.LayerCAM, "scorecam": torchcam.ScoreCAM}


@pytest.mark.parametrize("arch", CASES)
@pytest.mark.parametrize("method", [m for m in TORCHCAM if m not in TORCHCAM_DIFFERS])
def test_layer_maps_match_torchcam(arch, method, ours, vgg16, resnet18, images64):
    """Torchcam returns ReLU'd, min-max maps at layer resolution for the classes it is given."""
    model = {"vgg16": vgg16, "resnet18": resnet18}[arch]
    result = ours[arch][method]
    with TORCHCAM[method](model, CASES[arch], input_shape=tuple(images64.shape[1:])) as cam:
        scores = model(images64)
        reference = cam(scores.argmax(1).tolist(), scores)[0]  # camlab explained the top classes
    assert reference.shape == result.raw.shape
    assert (minmax(result.raw.clamp(min=0)) - reference).abs().max() < 1e-4


@pytest.mark.parametrize("method", sorted(TORCHCAM_DIFFERS))
def test_torchcam_differs_where_the_bench_says_it_does(method, ours, resnet18, images64):
    """The definitions in TORCHCAM_DIFFERS are real: the maps disagree by far more than rounding."""
    images = _images("resnet18", method, images64)
    result = ours["resnet18"][method]
    with TORCHCAM[method](resnet18, "layer4", input_shape=tuple(images.shape[1:])) as cam:
        with torch.set_grad_enabled(method != "scorecam"):
            scores = resnet18(images)
            reference = cam(scores.argmax(1).tolist(), scores)[0]
    assert (minmax(result.raw.clamp(min=0)) - reference).abs().max() > 1e-3


class _LogSoftmax:
    """A curved target (log-probability of one class), in grad-cam's target protocol."""

    def __init__(self, cls):
        self.cls = cls

    def __call__(self, output):
        return torch.log_softmax(output, dim=-1)[..., self.cls]


def test_shapleycam_matches_grad_cam_where_the_hessian_is_not_zero(resnet18, images64):
    """With a logit target ResNet18's head is linear in layer4 and ShapleyCAM is Grad-CAM (the
    agreement above); the log-probability is curved, so the Hessian term is real and must match."""
    classes = resnet18(images64).argmax(1)
    rows = torch.arange(len(classes))
    ours = camlab.explain(resnet18, images64, ["shapleycam", "gradcam"], target_layer="layer4",
                          targets=lambda logits: torch.log_softmax(logits, dim=1)[rows, classes])
    with pytorch_grad_cam.ShapleyCAM(resnet18, [resnet18.layer4]) as cam:
        reference = torch.from_numpy(cam(images64, targets=[_LogSoftmax(int(c)) for c in classes]))
    assert (ours["shapleycam"].display - reference).abs().max() < 1e-4
    assert (ours["shapleycam"].display - ours["gradcam"].display).abs().max() > 1e-3


def test_finercam_options_match_grad_cam_and_alpha_zero_is_the_base_cam(resnet18, images64):
    options = {"finercam": {"base": "layercam", "alpha": 0.6, "comparisons": 2}}
    ours = camlab.explain(resnet18, images64, ["finercam", "layercam"], target_layer="layer4", options=options)
    with pytorch_grad_cam.FinerCAM(resnet18, [resnet18.layer4], base_method=pytorch_grad_cam.LayerCAM) as cam:
        reference = torch.from_numpy(cam(images64, targets=None, alpha=0.6, comparison_categories=[1, 2]))
    assert (ours["finercam"].display - reference).abs().max() < 1e-4
    assert (ours["finercam"].display - ours["layercam"].display).abs().max() > 1e-3
    base = camlab.explain(resnet18, images64, ["finercam", "layercam"], target_layer="layer4",
                          options={"finercam": {"base": "layercam", "alpha": 0.0}})
    assert (base["finercam"].raw - base["layercam"].raw).abs().max() < 1e-5


def _bias_net(resnet18):
    """ResNet18 whose batch norms shift (random running statistics and biases): FullGrad's bias terms are
    zero on a freshly initialised network."""
    model = copy.deepcopy(resnet18)
    generator = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                for tensor, low, high in ((module.running_mean, -1, 1), (module.running_var, 0.5, 2),
                                          (module.bias, -0.5, 0.5), (module.weight, 0.5, 1.5)):
                    tensor.copy_(torch.rand(tensor.shape, generator=generator) * (high - low) + low)
    return model


@pytest.mark.parametrize("net", ["tiny", "resnet18"])
def test_fullgrad_matches_grad_cam_with_conv_and_batch_norm_biases(net, resnet18, images64):
    """TinyNet: conv biases and an in-place ReLU after conv1; ResNet18: batch-norm shifts, no conv biases."""
    model = TinyNet() if net == "tiny" else _bias_net(resnet18)
    ours = camlab.explain(model, images64, ["fullgrad", "gradient"])
    with pytorch_grad_cam.FullGrad(model, []) as cam:
        reference = torch.from_numpy(cam(images64, targets=None))
    assert (ours["fullgrad"].display - reference).abs().max() < 1e-4
    assert (ours["fullgrad"].display - ours["gradient"].display).abs().max() > 1e-2  # the bias terms count


SCORE_SIZE = 32  # ResNet18's layer3 is 2x2 there; 1024 pixels, a multiple of 16, so seeded draws match


@pytest.mark.parametrize(("method", "options", "peer", "peer_options"), [
    ("sscam", {"samples": 1, "noise": 0.0}, torchcam.ScoreCAM, {}),
    ("sscam", {"samples": 3, "noise": 2.0, "seed": 5}, torchcam.SSCAM, {"num_samples": 3, "std": 2.0}),
    ("iscam", {"samples": 3}, torchcam.ISCAM, {"num_samples": 3}),
])
def test_score_cam_variants_match_torchcam(method, options, peer, peer_options, resnet18, images64):
    """SS-CAM's noise is torchcam's under the same seed; without noise it is torchcam's Score-CAM."""
    images = torch.nn.functional.interpolate(images64[:2], size=SCORE_SIZE, mode="bilinear")
    ours = camlab.explain(resnet18, images, [method], target_layer="layer3", options={method: options})[method]
    with peer(resnet18, "layer3", input_shape=tuple(images.shape[1:]), **peer_options) as cam:
        with torch.no_grad():
            scores = resnet18(images)
            torch.manual_seed(options.get("seed", 0))
            reference = cam(scores.argmax(1).tolist(), scores)[0]
    assert (minmax(ours.raw.clamp(min=0)) - reference).abs().max() < 1e-4


def test_smoothgradcam_plusplus_is_gradcam_plusplus_without_noise_and_differs_from_torchcams(resnet18, images64):
    """ResNet18's layer3, not layer4: behind global pooling and one linear layer the layer's gradient
    does not depend on the input, and smoothing cannot change it."""
    quiet = {"smoothgradcam++": {"noise": 0.0, "samples": 2}}
    ours = camlab.explain(resnet18, images64, ["smoothgradcam++", "gradcam++"], target_layer="layer3", options=quiet)
    assert (ours["smoothgradcam++"].raw - ours["gradcam++"].raw).abs().max() < 1e-5
    noisy = camlab.explain(resnet18, images64, ["smoothgradcam++"], target_layer="layer3")
    assert (noisy["smoothgradcam++"].display - ours["gradcam++"].display).abs().max() > 1e-2
    with torchcam.SmoothGradCAMpp(resnet18, "layer3", input_shape=tuple(images64.shape[1:]), std=1e-6,
                                  num_samples=2) as cam:
        scores = resnet18(images64)
        reference = cam(ours.classes.tolist(), scores)[0]
    # torchcam's denominator sums g³·act over positions: a different map even without noise
    assert (minmax(ours["smoothgradcam++"].raw.clamp(min=0)) - reference).abs().max() > 1e-2


@pytest.mark.parametrize("method", ["gradcam", "layercam", "hirescam", "xgradcam"])
def test_eigen_smooth_is_grad_cams_up_to_each_images_sign(method, resnet18, images64):
    """grad-cam's eigen_smooth: the first principal component of the channels' terms, its sign LAPACK's."""
    ours = camlab.explain(resnet18, images64, [method], target_layer="layer3", options={method: {"eigen_smooth": True}})
    with REFERENCES[method](resnet18, [resnet18.layer3]) as cam:
        reference = torch.from_numpy(cam(images64, targets=None, eigen_smooth=True))
    flipped = layer_map_to_display(-ours[method].raw, images64.shape[-2:])
    gaps = [(candidate - reference).abs().flatten(1).amax(dim=1) for candidate in (ours[method].display, flipped)]
    assert torch.minimum(*gaps).max() < 1e-4
    plain = camlab.explain(resnet18, images64, [method], target_layer="layer3")[method]
    assert (plain.display - ours[method].display).abs().max() > 1e-2


def _augmented(images, flip, factor):
    return (images * factor).flip(-1) if flip else images * factor


def test_aug_smooth_runs_grad_cams_augmentations_and_averages_the_raw_maps(resnet18, images64):
    """grad-cam's aug_smooth is the mean of the six augmentations' display maps (targets given, so
    both explain the same classes); camlab's is the mean of their signed raw maps, flipped back."""
    from camlab.context import AUGMENTATIONS

    classes = resnet18(images64).argmax(1).tolist()
    smoothed = camlab.explain(resnet18, images64, ["gradcam"], target_layer="layer3", targets=classes,
                              options={"gradcam": {"aug_smooth": True}})["gradcam"]
    each = [camlab.explain(resnet18, _augmented(images64, flip, factor), ["gradcam"], target_layer="layer3",
                           targets=classes)["gradcam"] for flip, factor in AUGMENTATIONS]
    unflipped = [(cam.raw.flip(-1), cam.display.flip(-1)) if flip else (cam.raw, cam.display)
                 for cam, (flip, _) in zip(each, AUGMENTATIONS)]
    assert (smoothed.raw - sum(raw for raw, _ in unflipped) / len(each)).abs().max() < 1e-6
    targets = [pytorch_grad_cam.utils.model_targets.ClassifierOutputTarget(c) for c in classes]
    with pytorch_grad_cam.GradCAM(resnet18, [resnet18.layer3]) as cam:
        reference = torch.from_numpy(cam(images64, targets=targets, aug_smooth=True))
    assert (sum(display for _, display in unflipped) / len(each) - reference).abs().max() < 1e-4
    # averaging before or after the normalisation: a difference of definition, named in README
    assert (smoothed.display - reference).abs().max() > 1e-2


@pytest.mark.parametrize("base", ["layercam", "gradcam"])
def test_refinecam_matches_torchcam_on_resnet_layers_2_3_4(base, resnet18, images64):
    """The default layers behind layer4 are layer3 and layer2, torchcam's documented example; torchcam's
    Grad-CAM++ base differs by its own definition (TORCHCAM_DIFFERS), so the bases here are others."""
    peer = {"layercam": torchcam.LayerCAM, "gradcam": torchcam.GradCAM}[base]
    ours = camlab.explain(resnet18, images64, ["refinecam"], target_layer="layer4",
                          options={"refinecam": {"base": base}})["refinecam"]
    with torchcam.RefineCAM(resnet18, ["layer2", "layer3", "layer4"], input_shape=tuple(images64.shape[1:]),
                            base_method=peer) as cam:
        scores = resnet18(images64)
        reference = cam(ours_classes := scores.argmax(1).tolist(), scores)[0]
    assert ours_classes == camlab.explain(resnet18, images64, ["gradcam"]).classes.tolist()
    assert reference.shape == ours.raw.shape == (4, 8, 8)  # layer2's grid at 64 px
    assert (minmax(ours.raw) - reference).abs().max() < 1e-4


def test_refinecam_is_grad_cams_product_taken_at_the_finest_layer_not_at_the_input(resnet18, images64):
    """grad-cam multiplies the layers' display maps (upsampled to the input); camlab and torchcam
    multiply at the finest layer's grid: the same maps, combined at another resolution."""
    layers = ["layer2", "layer3", "layer4"]
    cam = pytorch_grad_cam.RefineCAM(resnet18, [resnet18.get_submodule(name) for name in layers])
    try:
        reference = torch.from_numpy(cam(images64, targets=None))
    finally:  # no context manager: its per-layer CAMs' hooks stay on the shared model until released
        for base in cam.base_cam_per_layer:
            base.activations_and_grads.release()
    product = torch.ones_like(reference)
    for name in layers:
        product = product * camlab.explain(resnet18, images64, ["gradcam++"], target_layer=name)["gradcam++"].display
    assert (minmax(product) - reference).abs().max() < 1e-4
    named = camlab.explain(resnet18, images64, ["refinecam"], target_layer="layer4",
                           options={"refinecam": {"layers": "layer2, layer3"}})["refinecam"]
    automatic = camlab.explain(resnet18, images64, ["refinecam"], target_layer="layer4")["refinecam"]
    assert torch.equal(named.raw, automatic.raw)
    assert (automatic.display - reference).abs().max() > 1e-3


def _small_vit():
    from torchvision.models import VisionTransformer

    torch.manual_seed(0)
    vit = VisionTransformer(image_size=32, patch_size=8, num_layers=4, num_heads=2, hidden_dim=32, mlp_dim=64,
                            num_classes=10).eval()
    torch.nn.init.normal_(vit.heads.head.weight)  # torchvision starts the head at zero: every map would be 0
    return vit


@pytest.mark.parametrize("blocks", [1, 3])
def test_legrad_matches_torchcam_on_a_vision_transformer(blocks, images64):
    model = _small_vit()
    images = torch.nn.functional.interpolate(images64, size=32, mode="bilinear")
    ours = camlab.explain(model, images, ["legrad"], options={"legrad": {"blocks": blocks}})
    with torchcam.LeGrad(model, list(model.encoder.layers)[-blocks:]) as cam:
        scores = model(images)
        reference = cam(scores.argmax(1).tolist(), scores)[0]
    assert (ours.logits - scores).abs().max() < 1e-5  # the replayed attention leaves the output unchanged
    assert reference.shape == ours["legrad"].raw.shape == (4, 4, 4)
    assert (minmax(ours["legrad"].raw) - reference).abs().max() < 1e-4


def test_legrad_is_read_from_the_shared_forward_and_matches_its_own_pass(images64):
    from camlab.context import shared_pass
    from camlab.methods.attention import legrad

    model = _small_vit()
    images = torch.nn.functional.interpolate(images64, size=32, mode="bilinear")
    camlab.explain(model, images, ["gradcam"])  # the first call's dry run is kept
    forwards = []
    model.register_forward_hook(lambda *args: forwards.append(1))
    shared = camlab.explain(model, images, ["legrad", "gradcam", "hirescam"])
    assert len(forwards) == 1
    alone = camlab.explain(model, images, ["gradcam", "hirescam"])
    for method in ("gradcam", "hirescam"):  # the replayed attention leaves the other maps as they were
        assert (shared[method].raw - alone[method].raw).abs().max() <= 1e-6 * alone[method].raw.abs().max()
    ctx = shared_pass(model, "encoder.layers.encoder_layer_3", model.encoder.layers[3], images)
    assert not ctx.recorded  # a pass without the recording: LeGrad runs its own forward
    own = legrad(ctx)
    assert (shared["legrad"].raw - own).abs().max() < 1e-6
    assert all(not m._forward_hooks and not m._forward_pre_hooks
               for m in model.modules() if m is not model)
