"""The compact table README shows, from the CSVs ``camlab-evaluate`` writes (nothing recomputed).

    python scripts/summarise_evaluation.py docs/results/masked_vgg-stack-shapes-100

Per method: leakage (display), map mean (coverage), Average Drop with its matched control, Average
Drop at 20% coverage, insertion and deletion AUC; each faithfulness number marked ✓ when the method
beats the control it is compared with over the whole 95% interval (matched control for AD, the random
map for AD@20 and the AUCs), ✗ when it does not. Then the control rows.
"""
import argparse
import csv

COLUMNS = [("leakage_l2", "leakage", None), ("map_mean", "map mean", None),
           ("average_drop", "AD ↓", ("average_drop", "matched")), ("average_drop_matched", "AD matched", None),
           ("average_drop@20", "AD@20 ↓", ("average_drop@20", "random")),
           ("insertion_auc", "insertion ↑", ("insertion_auc", "random")),
           ("deletion_auc", "deletion ↓", ("deletion_auc", "random"))]

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("prefix", help="path prefix of <prefix>.csv and <prefix>-comparisons.csv")
args = parser.parse_args()
rows = list(csv.DictReader(open(f"{args.prefix}.csv")))
verdicts = {(r["method"], r["metric"], r["control"]): r["verdict"] == "beats"
            for r in csv.DictReader(open(f"{args.prefix}-comparisons.csv"))}


def cell(row: dict, key: str, compared) -> str:
    value = row.get(key, "")
    if value in ("", "nan"):
        return "—"
    number = float(value)
    text = f"{number:.3f}" if abs(number) < 2 else f"{number:.1f}"
    if compared and (row["method"], *compared) in verdicts:
        text += " ✓" if verdicts[(row["method"], *compared)] else " ✗"
    return text


print("| method | " + " | ".join(label for _, label, _ in COLUMNS) + " |")
print("|---" * (len(COLUMNS) + 1) + "|")
for row in rows:
    print(f"| {row['method']} | " + " | ".join(cell(row, key, compared) for key, _, compared in COLUMNS) + " |")
