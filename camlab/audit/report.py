"""What an audit hands over: ``report.html`` (one self-contained file: images embedded, no request
to any network, opens offline in any browser), ``readouts.csv`` (one row per image x method and
control, every metric under its registered name), ``summary.csv`` (means and comparisons) and
``manifest.json`` (versions, model identity and weights hash, every image's path and sha256,
seeds, device, command line).

Every number the HTML shows is written from the same value ``summary.csv`` holds, through
:func:`cell` (a test parses the HTML and compares). Every string from the auditor's files
(paths, class names, folder names) is HTML-escaped.
"""
from __future__ import annotations

import base64
import csv
import html
import io
import json
import math
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from ..errors import CamlabError
from ..export import model_identity, versions
from ..metrics.catalog import is_readout, readout_key
from ..metrics.distribution import PERTURBATIONS
from ..readouts import CONTROL_ROWS, MODEL_ROW
from ..reliability import DECIDED, Reliability
from .run import RANDOM_CAM, AuditResult, interval

VERDICT_KEYS = ("average_drop", "average_drop@20", "insertion_auc", "deletion_auc")
LEAKAGE_KEYS = ("layer_leakage_l2", "leakage_l2", "leakage_mass")
LOCALISATION_KEYS = ("pointing_game", "relevance_mass", "relevance_rank")
SANITY_KEYS = ("sanity_rank_top", "sanity_rank_all", "sanity_ssim_all", "sanity_rank_smooth_all", "sanity_emprt",
               "sanity_rank_logit")
ROAD_KEYS = ("road_morf", "road_lerf", "road_combined")


def cell(value: float) -> str:
    """A number as both the HTML and the summary's ``shown`` column write it."""
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.4g}"


def readouts_rows(result: AuditResult) -> tuple[list[str], list[list]]:
    """``readouts.csv``: one row per image x method and control; ``image`` is the file's path
    relative to the source, then ``label``, ``explained_class``, ``method`` and every metric."""
    per_image = result.evaluation.per_image
    rows_in_order = [r for r in per_image if r != MODEL_ROW]
    metrics = list(dict.fromkeys(k for r in rows_in_order for k in per_image[r]
                                 if k != "masked_class" and is_readout(k)))
    names = result.model.loaded.class_names
    kept_labels, kept_classes = result.evaluation.labels, result.evaluation.classes
    if kept_labels is None or kept_classes is None:
        raise CamlabError("the audit's evaluation kept no labels and classes")
    labels, classes = kept_labels.tolist(), kept_classes.tolist()
    header = ["image", "label", "explained_class", "method", *metrics]
    rows = []
    for index, item in enumerate(result.images.items):
        label = names[labels[index]] if labels[index] >= 0 else ""
        for row in rows_in_order:
            values = per_image[row]
            rows.append([item.path, label, names[classes[index]], row,
                         *(float(values[k][index]) if k in values else "" for k in metrics)])
    return header, rows


def summary_rows(result: AuditResult) -> tuple[list[str], list[list]]:
    """``summary.csv``: per (row, metric) its mean over the images, with the text the report shows."""
    rows = []
    for row, metrics in result.evaluation.table.items():
        for key, value in metrics.items():
            rows.append([row, key, value, cell(value)])
    for comparisons, against in ((result.evaluation.comparisons, None), (result.random_cam, "Random-CAM")):
        for method, found in comparisons.items():
            for c in found:
                rows.append([method, f"{c.metric} vs {against or c.control}", c.difference, interval(c)])
    for entry in result.reliability:
        for method, share in entry.shares.items():
            rows.append([method, _reliability_name(entry), share, _share(share)])
    return ["row", "metric", "value", "shown"], rows


def _reliability_name(entry: Reliability) -> str:
    return f"{entry.metric} vs {entry.control} reliability"


def _share(share: float) -> str:
    return f"{100 * share:.0f}%"


def _reliability(result: AuditResult) -> str:
    """The comparisons resampled: per metric and control, each method's share of resamples in which it
    is better than the control (green when it decides for the method, red against, plain undecided)."""
    methods = list(dict.fromkeys(m for entry in result.reliability for m in entry.shares))
    head = "".join(f"<th>{html.escape(m)}</th>" for m in methods)
    lines = [f"<table><tr><th>metric vs control</th>{head}<th>decided</th><th>order of methods (ρ)</th></tr>"]
    for entry in result.reliability:
        cells = []
        for method in methods:
            share = entry.shares.get(method)
            if share is None:
                cells.append("<td>—</td>")
                continue
            css = ' class="ok"' if share >= DECIDED else ' class="no"' if share <= 1 - DECIDED else ""
            name = html.escape(_reliability_name(entry))
            cells.append(f'<td{css} data-row="{html.escape(method)}" data-comparison="{name}">{_share(share)}</td>')
        rho = "—" if math.isnan(entry.rank_stability) else f"{entry.rank_stability:.2f}"
        words = html.escape(readout_key(entry.metric).words)
        lines.append(f"<tr><th>{words} vs {html.escape(entry.control)}</th>" + "".join(cells)
                     + f"<td>{entry.decided}/{len(entry.shares)}</td><td>{rho}</td></tr>")
    return "\n".join(lines) + "</table>"


def _csv(header: list[str], rows: list[list]) -> str:
    out = io.StringIO()
    csv.writer(out).writerows([header, *rows])
    return out.getvalue()


def _jpeg(data: bytes, alt: str, width: int = 160) -> str:
    return (f'<img alt="{html.escape(alt)}" width="{width}" '
            f'src="data:image/jpeg;base64,{base64.b64encode(data).decode()}">')


def _num(result: AuditResult, row: str, key: str) -> str:
    """A table cell that carries which summary value it shows (the test reads these)."""
    value = result.evaluation.table.get(row, {}).get(key)
    if value is None:
        return "<td>—</td>"
    return f'<td data-row="{html.escape(row)}" data-metric="{html.escape(key)}">{cell(value)}</td>'


def _head(keys: Sequence[str]) -> str:
    return "".join(f"<th title=\"{html.escape(k)}\">{html.escape(readout_key(k).words)}</th>" for k in keys)


# The verdicts the report's first table shows (summary.csv has every comparison, e.g. each coverage).
SHOWN_COMPARISONS = (("average_drop", "matched"), ("average_drop", "all-zero"), ("average_drop@20", "random"),
                     ("insertion_auc", "random"), ("deletion_auc", "random"), ("average_drop@20", "Random-CAM"),
                     ("insertion_auc", "Random-CAM"), ("deletion_auc", "Random-CAM"))


def _verdicts(result: AuditResult) -> str:
    methods = [m for m in result.methods if m != RANDOM_CAM]
    found = {m: {(c.metric, c.control): (c, f"{c.metric} vs {c.control}")
                 for c in result.evaluation.comparisons.get(m, [])} for m in methods}
    for m in methods:
        found[m].update({(c.metric, "Random-CAM"): (c, f"{c.metric} vs Random-CAM") for c in result.random_cam.get(m, [])})
    columns = [key for key in SHOWN_COMPARISONS if any(key in found[m] for m in methods)]
    head = "".join(f"<th>{html.escape(readout_key(metric).words)} vs {html.escape(control)}</th>"
                   for metric, control in columns)
    lines = [f"<table><tr><th>method</th>{head}</tr>"]
    for method in methods:
        cells = []
        for key in columns:
            c, name = found[method].get(key, (None, ""))
            css = "" if c is None else (' class="ok"' if c.beats else ' class="no"')
            text = "—" if c is None else html.escape(interval(c))
            cells.append(f'<td{css} data-row="{html.escape(method)}" data-comparison="{html.escape(name)}">{text}</td>')
        lines.append(f"<tr><th>{html.escape(method)}</th>{''.join(cells)}</tr>")
    return "\n".join(lines) + "</table>"


def _metric_table(result: AuditResult, keys: Sequence[str], rows: Sequence[str]) -> str:
    keys = [k for k in keys if any(k in result.evaluation.table.get(r, {}) for r in rows)]
    if not keys:
        return ""
    lines = [f"<table><tr><th>map</th>{_head(keys)}</tr>"]
    lines += [f"<tr><th>{html.escape(r)}</th>{''.join(_num(result, r, k) for k in keys)}</tr>" for r in rows
              if r in result.evaluation.table]
    return "\n".join(lines) + "</table>"


STYLE = """body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.6em 0 1.4em;display:block;overflow-x:auto}
td,th{border:1px solid #ccc;padding:.25em .5em;font-size:.9em}
th{background:#f4f4f4;text-align:left}.ok{background:#e5f5e5}.no{background:#fbe9e9}.warn{background:#fff3cd;
padding:.6em 1em;border-left:4px solid #e0a800}.gallery td{vertical-align:top;text-align:center;font-size:.8em}
code{background:#f4f4f4;padding:0 .2em}"""


def report_html(result: AuditResult, command: str) -> str:
    """The report as one HTML document with nothing to fetch."""
    loaded, e = result.model.loaded, result.evaluation
    esc = html.escape
    methods = [m for m in result.methods if m != RANDOM_CAM]
    rows = [*result.methods, *[r for r in CONTROL_ROWS if r in e.table]]
    parts = [f"<!doctype html><html lang=en><head><meta charset=utf-8><title>camlab audit: {esc(loaded.name)}</title>"
             f"<style>{STYLE}</style></head><body>",
             f"<h1>camlab audit: {esc(loaded.name)}</h1>",
             f"<p>Weights: {esc(str(loaded.card.get('weights') or 'as loaded from the file'))}.</p>",
             f"<p>{e.images} images from {esc(result.images.description)}; methods {esc(', '.join(methods))} "
             f"(and Random-CAM, a map that ignores the model); layer <code>{esc(result.layer)}</code>; device "
             f"{esc(result.device)}; {result.seconds:.0f} s. Preprocessing: {esc(result.model.preprocessing.describe())}."
             "</p>"]
    if result.images.skipped:
        parts.append(f"<p class=warn>{len(result.images.skipped)} file(s) skipped (listed at the end).</p>")
    parts.append("""<h2>How to read this</h2><ul>
<li><b>Average Drop</b> (↓) is how much the class's confidence falls when the image is multiplied by the map;
<b>insertion</b> (↑) and <b>deletion</b> (↓) AUC reveal or remove pixels in the map's order. Alone they reward
maps that cover a lot: each method is therefore compared with controls that know nothing of the model —
its <b>matched control</b> (its own values at random places), a <b>random smooth map</b>, the <b>all-zero</b> map
and <b>Random-CAM</b>. ✓ means the method is better than the control over the whole 95% interval of the
paired per-image difference; ✗ means it is not — a claim the report does not make.</li>
<li><b>Leakage</b> (↓) is the share of a map inside a region the model provably cannot use; any share there
is painted where the model did not look.</li>
<li><b>Sanity</b>: Spearman between the map of the trained model and of a model with randomised layers,
and (logit) between the maps of the explained class and of a random other class;
a method that explains this model falls towards 0.</li>
<li><b>In distribution</b>: if the model gives one class to every masked, darkened or blurred image, or a
black image keeps its confidence, pixel-removal metrics measure that, not the maps.</li></ul>""")
    parts.append("<h2>Does each method beat its controls?</h2><p>Per method, the mean per-image difference to each "
                 "control ± its 95% half-width (summary.csv has every coverage).</p>" + _verdicts(result))
    parts.append("<h2>Faithfulness</h2>" + _metric_table(result, [*VERDICT_KEYS, "increase_in_confidence",
                                                                  "average_drop_matched", "map_mean"], rows))
    road = _metric_table(result, ROAD_KEYS, rows)
    if road:
        parts.append("<h2>ROAD</h2><p>The mean change in the class's probability when 10–90% of the most (MoRF) or "
                     "least (LeRF) relevant pixels are filled in from their neighbours; compare with the random "
                     "map's row, which shows what any removal of that size costs.</p>" + road)
    parts.append(_leakage_section(result))
    localisation = _metric_table(result, LOCALISATION_KEYS, rows)
    if localisation:
        source = ("camlab's generated masks" if result.images.mask_root is None else
                  f"the masks in {esc(result.images.mask_root.name)}/ (manifest.json names each image's)")
        parts.append(f"<h2>Localisation on the objects' masks</h2><p>From {source}; compare with the random map's "
                     "row: how often a map that knows nothing lands on the object.</p>" + localisation)
    sanity = _metric_table(result, SANITY_KEYS, result.methods)
    if sanity:
        parts.append("<h2>Sanity (randomised models and another class, first batch)</h2><p>Spearman and SSIM "
                     "between the trained model's maps and those of models with the top layer or every layer "
                     "randomised (Smooth MPRT: each map averaged over noisy copies of the image first): near 0 is "
                     "good. Efficient MPRT: how much more complex (histogram entropy) the map becomes when every "
                     "layer is randomised: higher is good. Randomising from the top cannot rank methods on its own "
                     "(Binder et al. 2023): read these as checks that a map depends on the model at all.</p>" + sanity)
    if result.reliability:
        first = result.reliability[0]
        parts.append(f"<h2>Which readouts to trust on these images</h2><p>Each comparison redone on "
                     f"{first.resamples} bootstrap resamples of the {first.images} images, each image in a random one "
                     "of its tie orders: the share of resamples in which the method is better than the control. "
                     f"At least {100 * DECIDED:.0f}% (green) or at most {100 * (1 - DECIDED):.0f}% (red): the metric "
                     "decides on these images; in between it does not, and its verdict rests on which images were "
                     "picked. ρ: how stable the order of the methods is across resamples (Spearman with their order "
                     "on all images).</p>" + _reliability(result))
    parts += [_distribution_section(result), _accuracy_section(result), _gallery_section(result, methods),
              _skipped_section(result)]
    parts.append(f"<h2>How it was made</h2><p><code>{esc(command)}</code></p><p>camlab "
                 f"{esc(versions()['camlab'])}; every number here is in summary.csv (column <i>shown</i>), every "
                 "per-image value in readouts.csv.</p></body></html>")
    return "\n".join(part for part in parts if part)


def _leakage_section(result: AuditResult) -> str:
    esc, e = html.escape, result.evaluation
    if not result.region:
        return ("<h2>Leakage</h2><p>No region the model cannot use: this model has no unseen region, no cells "
                "of the explained layer it never reads, and no wall was given (pass <code>--wall</code>), so no "
                "leakage is measured.</p>")
    occlusion = ""
    if "occlusion_drop" in e.table.get(MODEL_ROW, {}):
        occlusion = (f"<p>The model itself when those pixels are removed (to {esc(result.config.deletion_fill)}): "
                     "0 where it provably ignores them; behind a feature wall, how much the cells beside the "
                     "wall still see of them.</p>"
                     + _metric_table(result, ("occlusion_drop", "occlusion_increase"), [MODEL_ROW]))
    return (f"<h2>Leakage</h2><p>Measured in {esc(result.region)}.</p>" + occlusion
            + _metric_table(result, LEAKAGE_KEYS, result.methods))


def _distribution_section(result: AuditResult) -> str:
    esc = html.escape
    if MODEL_ROW not in result.evaluation.table:
        return ""
    lines = ["<table><tr><th>version of each image</th><th>confidence in the explained class</th>"
             "<th>share given their most common class</th></tr>"]
    for kind in ["clean", *PERTURBATIONS]:
        lines.append(f"<tr><th>{esc(kind if kind == 'clean' else PERTURBATIONS[kind])}</th>"
                     f"{_num(result, MODEL_ROW, f'p_{kind}')}{_num(result, MODEL_ROW, f'modal_share_{kind}')}</tr>")
    return ("<h2>Does the model stay in distribution under the metrics' perturbations?</h2>"
            + "".join(f"<p class=warn>{esc(w)}</p>" for w in result.warnings)
            + ("" if result.warnings else "<p>Yes, by these checks: no collapse to one class, and a black "
               "image loses most of the confidence.</p>") + "\n".join(lines) + "</table>")


def _accuracy_section(result: AuditResult) -> str:
    if result.accuracy is None:
        return ""
    lines = [f"<h2>Accuracy</h2><p>{100 * result.accuracy:.1f}% of the images are predicted as their label "
             "(the maps explain the predicted class).</p><table><tr><th>class</th><th>images</th>"
             "<th>accuracy</th></tr>"]
    lines += [f"<tr><td>{html.escape(name)}</td><td>{count}</td><td>{100 * acc:.1f}%</td></tr>"
              for name, count, acc in result.per_class]
    return "\n".join(lines) + "</table>"


def _gallery_section(result: AuditResult, methods: list[str]) -> str:
    esc = html.escape
    if not result.gallery:
        return ""
    parts = ["<h2>The most telling images</h2><table class=gallery><tr><th>image</th><th>original</th>"
             + "".join(f"<th>{esc(m)}</th>" for m in methods) + "</tr>"]
    for item in result.gallery:
        parts.append(f"<tr><td>{esc(item.path)}<br>{esc(item.why)}</td><td>{_jpeg(item.original, item.path)}</td>"
                     + "".join(f"<td>{_jpeg(item.overlays[m], m)}</td>" for m in methods) + "</tr>")
    return "\n".join(parts) + "\n</table>"


def _skipped_section(result: AuditResult) -> str:
    esc = html.escape
    if not result.images.skipped:
        return ""
    return ("<h2>Skipped files</h2><table><tr><th>file</th><th>why</th></tr>"
            + "".join(f"<tr><td>{esc(p)}</td><td>{esc(why)}</td></tr>" for p, why in result.images.skipped)
            + "</table>")


def manifest(result: AuditResult, command: str) -> dict:
    """The audit's manifest.json: the model, images, settings and versions that reproduce it."""
    loaded = result.model.loaded
    extra = {}
    try:
        import timm

        extra["timm"] = timm.__version__
    except ImportError:
        pass
    return {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": command,
        "versions": versions(**extra),
        "model": {**model_identity(loaded.model, loaded.name, loaded.architecture, loaded.card), "spec": result.model.spec},
        "preprocessing": result.model.preprocessing.describe(),
        "layer": result.layer,
        "methods": result.methods,
        "settings": {"groups": list(result.config.groups), "coverages": list(result.config.coverages),
                     "steps": result.config.steps, "space": result.config.space,
                     "deletion_fill": result.config.deletion_fill, "insertion_start": result.config.insertion_start,
                     "seed": result.config.seed, "tie_orders": result.config.tie_orders,
                     "processes": result.evaluation.processes},
        "wall": None if result.wall is None else {"description": result.wall.description, "layer": result.wall.layer,
                                                  "cells": result.walled_cells},
        "leakage_region": result.region,
        "device": result.device,
        "images": {"source": result.images.description, "kind": result.images.kind,
                   "files": [{"path": i.path, "sha256": i.sha256, "label": i.label,
                              **({"mask": i.mask, "mask_sha256": i.mask_sha256} if i.mask else {})}
                             for i in result.images.items],
                   "skipped": [{"path": p, "why": why} for p, why in result.images.skipped]},
        "warnings": result.warnings,
    }


def audit_files(result: AuditResult, command: str) -> dict[str, str]:
    """The four files' names and texts (the app offers them as downloads)."""
    return {
        "report.html": report_html(result, command),
        "readouts.csv": _csv(*readouts_rows(result)),
        "summary.csv": _csv(*summary_rows(result)),
        "manifest.json": json.dumps(manifest(result, command), indent=2, default=float),
    }


def write_audit(result: AuditResult, out: str | Path, command: str) -> dict[str, Path]:
    """Write :func:`audit_files` into ``out`` (created); returns their paths by name."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, text in audit_files(result, command).items():
        paths[name] = out / name
        paths[name].write_text(text, encoding="utf-8")
    return paths
