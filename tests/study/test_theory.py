import torch

from camlab import explain
from camlab.study.theory import OneConvWalledNet, mass_below_wall, theory_images


def test_walled_one_layer_net_cannot_see_its_bottom_rows_yet_gradcam_paints_them():
    images = theory_images(8)
    model = OneConvWalledNet(filters=8, masked_rows=7, generator=torch.Generator().manual_seed(0)).eval()
    changed = images.clone()
    changed[:, :, 16:] = torch.rand_like(changed[:, :, 16:])  # pooled rows 7..13 see input rows 14..28
    changed[:, :, 14:16] = images[:, :, 14:16]
    with torch.no_grad():
        assert torch.equal(model(images), model(changed))
    shares, examples = mass_below_wall(8, 7, trials=20, images=images)
    assert shares["gradcam"].mean() > 0.05 and (shares["hirescam"] == 0).all()
    assert examples["gradcam"].shape == (14, 14) and (examples["hirescam"][7:] == 0).all()
    hires = explain(model, images, ["hirescam"], target_layer="pool")["hirescam"].raw
    assert (hires[:, 7:] == 0).all()
