"""The compact table README shows, from the CSVs ``camlab-evaluate`` writes (nothing recomputed).

    python scripts/summarise_evaluation.py docs/results/masked_vgg-stack-shapes-100

Per method: leakage (display), map mean (coverage), Average Drop with its matched control, Average
Drop at 20% coverage, insertion and deletion AUC, and ROAD's MoRF, LeRF and combined scores — the
columns the run has; each faithfulness number marked ✓ when the method beats the control it is
compared with over the whole 95% interval (matched control for AD, the random map for the others),
✗ when it does not, and followed by ±s where s (the spread of the mean across tie orders) shows at
the table's precision. Then the control rows.
"""
import argparse
import csv

COLUMNS = [("leakage_l2", "leakage", None), ("map_mean", "map mean", None),
           ("average_drop", "AD ↓", ("average_drop", "matched")), ("average_drop_matched", "AD matched", None),
           ("average_drop@20", "AD@20 ↓", ("average_drop@20", "random")),
           ("insertion_auc", "insertion ↑", ("insertion_auc", "random")),
           ("deletion_auc", "deletion ↓", ("deletion_auc", "random")),
           ("road_morf", "ROAD MoRF ↓", ("road_morf", "random")), ("road_lerf", "ROAD LeRF ↑", ("road_lerf", "random")),
           ("road_combined", "ROAD combined ↑", ("road_combined", "random"))]

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("prefix", help="path prefix of <prefix>.csv and <prefix>-comparisons.csv")
args = parser.parse_args()
rows = list(csv.DictReader(open(f"{args.prefix}.csv")))
verdicts = {(r["method"], r["metric"], r["control"]): r["verdict"] == "beats"
            for r in csv.DictReader(open(f"{args.prefix}-comparisons.csv"))}


def cell(row: dict, key: str, compared: dict) -> str:
    """One table cell: the value, with ✓/✗ where a comparison decided."""
    value = row.get(key, "")
    if value in ("", "nan"):
        return "—"
    number = float(value)
    digits = 3 if abs(number) < 2 else 1
    text = f"{number:.{digits}f}"
    spread = float(row.get(key + "_order_sd") or 0)
    if round(spread, digits) > 0:
        text += f" ±{spread:.{digits}f}"
    if compared and (row["method"], *compared) in verdicts:
        text += " ✓" if verdicts[(row["method"], *compared)] else " ✗"
    return text


present = [column for column in COLUMNS if column[0] in rows[0]]
print("| method | " + " | ".join(label for _, label, _ in present) + " |")
print("|---" * (len(present) + 1) + "|")
for row in rows:
    print(f"| {row['method']} | " + " | ".join(cell(row, key, compared) for key, _, compared in present) + " |")
