"""``report.html``: the run for a person — funnel, reasons, sizes, score histograms with their cuts,
sample images, near-duplicate pairs dropped, reject examples.

One self-contained HTML file (thumbnails inlined), written after the funnel check. The sizes and
reject examples come from the job's tally (``dataset.tally``); only the thumbnails are read from
shards, the first ones with samples, until SAMPLES_SHOWN are found.
"""

from __future__ import annotations

import base64
import html
import tarfile
from collections import defaultdict

from dataset import fileio
from dataset.layout import shard_paths
from dataset.tally import FIRST_SHARDS, SCORE_BINS, SIZE_LABELS
from pipeline.near_dedup import PAIRS

SAMPLES_SHOWN = FIRST_SHARDS
PAIRS_SHOWN = 24


def _esc(value) -> str:
    return html.escape("" if value is None else str(value))


def _thumbnails(shard_tars: list[str]) -> list[tuple[str, str, str]]:
    """(data URI, caption, key) of the first samples of the first shards."""
    found: dict[str, dict] = defaultdict(dict)
    for path in shard_tars:
        with fileio.open_read(path) as stream, tarfile.open(fileobj=stream, mode="r|") as tar:
            for member in tar:
                key, _, ext = member.name.partition(".")
                if key not in found and len(found) >= SAMPLES_SHOWN:
                    break
                found[key][ext] = tar.extractfile(member).read()
        if len(found) >= SAMPLES_SHOWN:
            break
    shown = []
    for key, parts in list(found.items())[:SAMPLES_SHOWN]:
        ext = next((e for e in ("jpg", "webp", "png") if e in parts), None)
        if ext:
            mime = "jpeg" if ext == "jpg" else ext
            uri = f"data:image/{mime};base64,{base64.b64encode(parts[ext]).decode()}"
            shown.append((uri, parts.get("txt", b"").decode("utf-8", "replace"), key))
    return shown


def clip_summary(clip: dict, top: dict | None = None) -> str:
    """One line on the CLIP model a run scored with, and the top-fraction cut (``top``) when it ran."""
    if not clip["filtering"]:
        return (f"CLIP {clip['model']}: NO WEIGHTS ({clip['problem']}): scores are random and no pair "
                "was dropped for its score")
    cut = "no cut" if clip["min_score"] is None else f"pairs under {clip['min_score']} dropped"
    if top and top["cut"] is not None:
        cut += (f"; the top {top['fraction']:g} kept: {top['keep']} of {top['scored']} pairs, "
                f"scores >= {top['cut']:.4f}")
    grounding = clip.get("grounding")
    if grounding:
        cut += (f"; a caption word must be among the image's top {grounding['top_k']} of "
                f"{grounding['labels']} labels ({grounding['vocabulary']})")
    return f"CLIP {clip['model']} ({clip['weights']}), {clip['precision']} on {clip['device']}: {cut}"


def concepts_line(concepts: dict) -> str:
    """One line on the concept-frequency cut."""
    common = ", ".join(f"{concept} {n}" for concept, n in concepts["most_mentioned"].items())
    return (f"Concepts: {concepts['concepts_kept']} of {concepts['concepts']} hypernyms have at least "
            f"{concepts['min_mentions']} of the run's {concepts['mentions']} mentions; captions with a rarer one "
            f"were dropped. Most mentioned: {common or 'none'}")


def tokens_line(tokens: dict) -> str:
    """One line on the tokenizers that made the run's token files."""
    source = tokens["revision"] or "local folder"
    agreement = ("" if tokens["precision"] == "fp32" or tokens["code_agreement"] is None
                 else f", {tokens['code_agreement']:.1%} of codes as fp32's")
    return (f"Tokens: {tokens['grid']}x{tokens['grid']} codes of {tokens['codebook_size']} from "
            f"{tokens['image_model']} ({source}, {tokens['precision']} on {tokens['device']}{agreement}); "
            f"{tokens['text_length']} ids per caption from {tokens['text_tokenizer']}, "
            f"{tokens['captions_truncated']} captions cut to fit")


def score_cuts(stats: dict) -> dict[str, float]:
    """The cut on each score the run applied (a pair at or past it was dropped)."""
    cuts = {}
    clip = stats.get("clip") or {}
    if clip.get("filtering") and clip.get("min_score") is not None:
        cuts["clip_score"] = clip["min_score"]
    for kind in ("nsfw", "watermark"):
        if (stats.get("safety") or {}).get(kind):
            cuts[f"{kind}_score"] = stats["safety"][kind]["max"]
    return cuts


def histogram_svg(column: str, counts: dict[str, list[int]], cut: float | None) -> str:
    """Kept (green) and dropped (grey) samples per bin of a score, stacked, with the cut as a red line."""
    low, high, bins = SCORE_BINS[column]
    kept, dropped = counts.get("kept", [0] * bins), counts.get("dropped", [0] * bins)
    tallest = max(k + d for k, d in zip(kept, dropped)) or 1
    width, height, bar = 360, 100, 360 / bins
    shapes = []
    for n, (k, d) in enumerate(zip(kept, dropped)):
        for value, below, colour in ((k, 0, "#4a7"), (d, k, "#bbb")):
            if value:
                top = height - (below + value) / tallest * height
                shapes.append(f"<rect x='{n * bar:.1f}' y='{top:.1f}' width='{bar - 1:.1f}' "
                              f"height='{value / tallest * height:.1f}' fill='{colour}'/>")
    if cut is not None:
        x = min(max((cut - low) / (high - low), 0), 1) * width
        shapes.append(f"<line x1='{x:.1f}' x2='{x:.1f}' y1='0' y2='{height}' stroke='#d33' stroke-width='2'/>")
    axis = f"<text x='0' y='{height + 14}' font-size='11'>{low:g}</text>" \
           f"<text x='{width}' y='{height + 14}' font-size='11' text-anchor='end'>{high:g}</text>"
    cut_text = f", cut {cut:g}" if cut is not None else ""
    caption = f"{column}: {sum(kept)} kept, {sum(dropped)} dropped{cut_text}"
    return (f"<figure class=chart><svg width='{width}' height='{height + 16}'>{''.join(shapes)}{axis}</svg>"
            f"<figcaption>{_esc(caption)}</figcaption></figure>")


def _pairs(out_dir: str) -> list[tuple[str, str]]:
    """(data URI, loser key) of the near-duplicate pairs the pass saved (``pipeline.near_dedup``)."""
    shown = []
    for path in sorted(fileio.match(fileio.join(out_dir, PAIRS, "*.jpg")))[:PAIRS_SHOWN]:
        data = base64.b64encode(fileio.read_bytes(path)).decode()
        shown.append((f"data:image/jpeg;base64,{data}", path.rsplit("/", 1)[-1].removesuffix(".jpg")))
    return shown


def render(stats: dict, *, thumbnails, sizes: dict[str, int], examples: dict[str, dict[str, list[dict]]],
           scores: dict | None = None, pairs: list[tuple[str, str]] = ()) -> str:
    funnel = stats["funnel"]
    widest = max((entry["in"] for entry in funnel), default=1) or 1
    rows = []
    for entry in funnel:
        bar = round(300 * entry["passed"] / widest)
        reasons = "<br>".join(f"{_esc(r)}: {n}" for r, n in entry["reasons"].items())
        rows.append(f"<tr><td>{_esc(entry['stage'])}</td><td>{entry['in']}</td>"
                    f"<td>{entry['passed']}<div class=bar style='width:{bar}px'></div></td>"
                    f"<td>{entry['rejected']}</td><td class=small>{reasons}</td></tr>")
    grid = "".join(f"<figure><img src='{uri}' alt='{_esc(caption)}'><figcaption>{_esc(caption)}"
                   f"<br><code>{_esc(key)}</code></figcaption></figure>"
                   for uri, caption, key in thumbnails)
    total = sum(sizes.values()) or 1
    size_rows = "".join(
        f"<tr><td>{_esc(label)}</td><td>{sizes.get(label, 0)}</td><td><div class=bar "
        f"style='width:{round(300 * sizes.get(label, 0) / total)}px'></div></td></tr>"
        for label in SIZE_LABELS)
    example_rows = "".join(
        f"<tr><td>{_esc(stage)}</td><td>{_esc(reason)}</td><td class=small>{_esc(row['url'])}</td>"
        f"<td class=small>{_esc(row['caption'])}</td><td class=small>{_esc(row['detail'])}</td></tr>"
        for stage, reasons in sorted(examples.items()) for reason, bucket in sorted(reasons.items()) for row in bucket)
    cuts = score_cuts(stats)
    charts = "".join(histogram_svg(column, counts, cuts.get(column))
                     for column, counts in sorted((scores or {}).items()))
    pair_grid = "".join(f"<figure class=pair><img src='{uri}' alt='near-duplicate pair'><figcaption>dropped "
                        f"<code>{_esc(key)}</code> (left) beside the image kept</figcaption></figure>"
                        for uri, key in pairs)
    check = "ok" if stats["check"]["ok"] else "FAILED: " + "; ".join(stats["check"]["problems"])
    clip = f"<p class=small>{_esc(clip_summary(stats['clip'], stats.get('clip_top')))}</p>" if stats.get("clip") else ""
    if stats.get("concepts"):
        clip += f"<p class=small>{_esc(concepts_line(stats['concepts']))}</p>"
    if stats.get("tokens"):
        clip += f"<p class=small>{_esc(tokens_line(stats['tokens']))}</p>"
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>altcap run report</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; margin-bottom: 2em; }}
td, th {{ border-bottom: 1px solid #ddd; padding: 4px 10px; text-align: left; vertical-align: top; }}
.bar {{ background: #4a7; height: 8px; margin-top: 3px; }}
.small {{ font-size: 85%; color: #555; max-width: 28em; overflow-wrap: anywhere; }}
figure {{ display: inline-block; width: 200px; margin: 6px; vertical-align: top; }}
figure img {{ width: 200px; height: auto; }}
figcaption {{ font-size: 80%; }}
figure.chart, figure.pair {{ width: auto; }}
figure.pair img {{ width: 256px; }}
</style></head><body>
<h1>altcap run report</h1>
<p>{stats['samples']} samples in {stats['shards']} shard(s), {stats['rejects']} rejects;
accounting check: <b>{_esc(check)}</b>; {stats['timings']['wall_s']:.1f} s; started
{_esc(stats['timings']['started'])}.</p>
<p class=small>inputs: {'<br>'.join(_esc(f'{kind}: {path}') for kind, path in stats['inputs'])}</p>
{clip}
<h2>Funnel</h2>
<table><tr><th>stage</th><th>in</th><th>passed</th><th>rejected</th><th>reasons</th></tr>
{''.join(rows)}</table>
<h2>Original size of the samples (smaller side, px)</h2>
<table><tr><th>side</th><th>samples</th><th></th></tr>{size_rows}</table>
{f"<h2>Scores</h2><div>{charts}</div>" if charts else ""}
<h2>Samples</h2>
<div>{grid or '<p>no samples</p>'}</div>
{f"<h2>Near-duplicates dropped</h2><div>{pair_grid}</div>" if pair_grid else ""}
<h2>Reject examples</h2>
<table><tr><th>stage</th><th>reason</th><th>url</th><th>caption</th><th>detail</th></tr>
{example_rows}</table>
</body></html>
"""


def write_report(out_dir: str, stats: dict, written: dict) -> str:
    """The report of a run whose job wrote the tally ``written``."""
    tars = [shard_paths(out_dir, shard_id)["tar"] for shard_id in written["first_shards"]]
    page = render(stats, thumbnails=_thumbnails(tars), sizes=written["sizes"], examples=written["examples"],
                  scores=written.get("scores"), pairs=_pairs(out_dir))
    path = fileio.join(out_dir, "report.html")
    fileio.write_bytes(path, page.encode("utf-8"))
    return path
