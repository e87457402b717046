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
