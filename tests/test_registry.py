"""The method registry: families, costs, options, and unknown names."""
import pytest
import torch

import camlab
from camlab.errors import CamlabError
from camlab.registry import Cost
from tests.nets import TinyNet


@pytest.fixture
def images():
    torch.manual_seed(2)
    return torch.randn(3, 3, 16, 16)


def test_registry_lists_family_and_cost_for_every_method():
    infos = camlab.list_methods()
    assert {i.name for i in infos} >= {"gradcam", "gradcam++", "xgradcam", "layercam", "hirescam", "eigencam",
                                       "scorecam", "ablationcam", "randomcam", "gradient", "guided_backprop",
                                       "guided_gradcam"}
    assert {i.name for i in infos if i.slow} == {"scorecam", "sscam", "iscam", "ablationcam", "smoothgradcam++",
                                                  "integrated_gradients", "smoothgrad"}
    assert camlab.get_method("gradcam").cost is Cost.SHARED_BACKWARD
    assert all(i.summary for i in infos)


def test_unknown_method_is_named_with_the_known_ones(images):
    with pytest.raises(CamlabError, match=r"unknown CAM method 'gradkam'.*gradcam"):
        camlab.explain(TinyNet(), images, ["gradkam"])


@pytest.fixture
def scratch_method():
    """Registers a method for one test and removes it afterwards."""
    from camlab.registry import REGISTRY, Family, register_method

    @register_method("test-power-cam", family=Family.GRADIENT_CAM, cost=Cost.SHARED_BACKWARD, needs_gradients=True)
    def power_cam(ctx, *, power: float = 1.0):
        """Test CAM: HiRes-CAM to a power."""
        return (ctx.gradients * ctx.activations).sum(1).clamp(min=0) ** power

    yield "test-power-cam"
    REGISTRY.pop("test-power-cam")


def test_a_decorated_function_is_a_method_with_its_keyword_options(images, scratch_method):
    info = camlab.get_method(scratch_method)
    # every method but the sanity baselines also takes aug_smooth, handled once by the registry
    assert info.options == {"power": 1.0, "aug_smooth": False} and info.summary == "Test CAM: HiRes-CAM to a power."
    assert "aug_smooth" not in camlab.get_method("randomcam").options
    plain = camlab.explain(TinyNet(), images, [scratch_method, "hirescam"], target_layer="relu2")
    squared = camlab.explain(TinyNet(), images, [scratch_method], target_layer="relu2",
                             options={scratch_method: {"power": 2.0}})
    assert torch.allclose(plain[scratch_method].raw, plain["hirescam"].raw.clamp(min=0))
    assert torch.allclose(squared[scratch_method].raw, plain["hirescam"].raw.clamp(min=0) ** 2)


def test_registering_twice_or_an_option_without_default_is_refused(scratch_method):
    from camlab.registry import Family, register_method

    with pytest.raises(ValueError, match="registered twice"):
        register_method(scratch_method, family=Family.BASELINE, cost=Cost.FORWARD_ONLY)(lambda ctx: ctx.activations)
    with pytest.raises(TypeError, match="needs a default"):
        register_method("no-default", family=Family.BASELINE, cost=Cost.FORWARD_ONLY)(lambda ctx, *, k: None)
    assert "no-default" not in camlab.REGISTRY


def test_bad_options_are_refused_before_any_work(images):
    model = TinyNet()
    with pytest.raises(CamlabError, match=r"conceptorcam has no option 'apperture'; its options: aperture"):
        camlab.explain(model, images, ["conceptorcam"], "relu2", options={"conceptorcam": {"apperture": 2}})
    with pytest.raises(CamlabError, match="must be a finite number"):
        camlab.explain(model, images, ["conceptorcam"], "relu2", options={"conceptorcam": {"aperture": float("nan")}})
    with pytest.raises(CamlabError, match="methods that were not asked for: scorecam"):
        camlab.explain(model, images, ["gradcam"], "relu2", options={"scorecam": {}})
    with pytest.raises(CamlabError, match="gradcam has no option 'power'; its options: eigen_smooth, aug_smooth"):
        camlab.explain(model, images, ["gradcam"], "relu2", options={"gradcam": {"power": 2}})
    with pytest.raises(CamlabError, match="eigengradcam has no option 'power'; its options: aug_smooth"):
        camlab.explain(model, images, ["eigengradcam"], "relu2", options={"eigengradcam": {"power": 2}})
    with pytest.raises(CamlabError, match="'eigen_smooth' is true or false, got 1"):
        camlab.explain(model, images, ["gradcam"], "relu2", options={"gradcam": {"eigen_smooth": 1}})


def test_eigen_smooth_is_an_option_of_every_channel_weighted_cam_and_projects_its_terms(images):
    with_option = {i.name for i in camlab.list_methods() if "eigen_smooth" in i.options}
    assert with_option == {"gradcam", "gradcam++", "xgradcam", "layercam", "hirescam", "gradcamelementwise",
                           "shapleycam", "finercam", "smoothgradcam++", "fem", "cam", "randomcam", "scorecam",
                           "sscam", "iscam", "ablationcam"}
    smooth = camlab.explain(TinyNet(), images, ["hirescam", "eigengradcam"], "relu2",
                            options={"hirescam": {"eigen_smooth": True}})
    # Eigen-Grad-CAM is by definition HiRes-CAM's grad x act terms projected on their first component
    assert torch.allclose(smooth["hirescam"].raw, smooth["eigengradcam"].raw, atol=1e-5)


def test_a_whole_number_option_refuses_a_fraction_instead_of_truncating_it():
    from camlab.errors import CamlabError
    from camlab.registry import get_method

    info = get_method("randomcam")
    assert info.resolve_options({"seed": 3.0})["seed"] == 3 and isinstance(info.resolve_options({"seed": 3.0})["seed"], int)
    with pytest.raises(CamlabError, match="'seed' is a whole number, got 2.7"):
        info.resolve_options({"seed": 2.7})
