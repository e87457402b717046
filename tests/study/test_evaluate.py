"""The evaluation command writes CSV and Markdown."""
import csv

from tests.paths import MODELS


def test_evaluate_command_writes_csv_and_markdown(tmp_path):
    from camlab.study.evaluate import main

    out = tmp_path / "eval"
    main(["--model", str(MODELS / "masked_vgg.pt"), "--images", "4", "--batch-size", "4", "--steps", "4",
                    "--methods", "gradcam", "hirescam", "conceptor-gradcam", "--out", str(out)])
    rows = list(csv.reader(out.with_suffix(".csv").open()))
    assert rows[0][:2] == ["method", "leakage_l2"] and len(rows) == 7  # 3 methods, 3 controls
    assert [row[0] for row in rows[4:]] == ["control: all-zero", "control: all-ones", "control: random"]
    verdicts = list(csv.reader(out.with_name(out.name + "-comparisons").with_suffix(".csv").open()))
    assert verdicts[0] == ["method", "metric", "control", "difference", "ci95_half_width", "verdict"]
    assert "average_drop" in rows[0] and "insertion_auc" in rows[0]
    table = {row[0]: dict(zip(rows[0], row)) for row in rows[1:]}
    assert float(table["hirescam"]["leakage_l2"]) < 0.01 < float(table["gradcam"]["leakage_l2"])
    assert "| conceptor-gradcam |" in out.with_suffix(".md").read_text()


def test_two_processes_write_the_table_one_process_writes(tmp_path):
    """torch.distributed.run with gloo: batches shared by two processes, gathered and written by rank 0."""
    import os
    import subprocess
    import sys

    common = ["-m", "camlab.study.evaluate", "--model", str(MODELS / "masked_vgg.pt"), "--images", "6",
              "--batch-size", "2", "--steps", "4", "--methods", "gradcam", "hirescam", "--device", "cpu"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # same arithmetic in every process
    subprocess.run([sys.executable, *common, "--out", str(tmp_path / "one")], check=True, env=env, timeout=300)
    subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                    *common, "--out", str(tmp_path / "two")], check=True, env=env, timeout=300)
    for suffix in ("", "-comparisons"):
        one = list(csv.reader((tmp_path / f"one{suffix}.csv").open()))
        two = list(csv.reader((tmp_path / f"two{suffix}.csv").open()))
        assert one[0] == two[0] and [r[0] for r in one] == [r[0] for r in two]
        for a, b in zip(one[1:], two[1:]):
            for column, x, y in zip(one[0], a, b):
                if column != "seconds_per_image":
                    assert x == y or abs(float(x) - float(y)) < 1e-6, (column, x, y)
    assert "computed by 2 processes" in (tmp_path / "two.md").read_text()
    assert "computed by 1 process\n" in (tmp_path / "one.md").read_text()


def test_a_model_whose_classes_are_not_the_datas_is_refused_before_any_work(tmp_path):
    import pytest
    import torch
    import torchvision

    from camlab.study.evaluate import main

    torch.save(torchvision.models.resnet18(weights=None, num_classes=8).state_dict(), tmp_path / "resnet18_eight.pt")
    with pytest.raises(SystemExit, match="predicts 8 classes \\(0, 1, 2, 3, …\\), not the generated data's 8 "
                                         "\\(circle, square"):
        main(["--model", str(tmp_path / "resnet18_eight.pt"), "--images", "4", "--out", str(tmp_path / "x")])
    assert not (tmp_path / "x.csv").exists()
