"""``report.html``: the run for a person to judge without a notebook.

One self-contained file, written after the funnel check and again by ``altcap report``: the funnel
as a chart and a table; histograms (scores with their cuts, image side and aspect, caption words,
languages), kept and dropped stacked; a grid of accepted samples; the review queue (kept samples
with the lowest CLIP scores first: where a person's check pays most, as proposed for DALL-E 2's
generated data); a grid per reject reason; captions before and after hypernymization with the
entities found; token statistics. Charts are inline SVG (``pipeline.report_charts``), images small
JPEG data: URIs (``pipeline.report_images``): nothing is fetched to view it. Every number comes from
stats.json and the job's tally (``dataset.tally``); only the images shown are read from the shards
and reject files.
"""

from __future__ import annotations

import html

from dataset import fileio
from dataset.tally import FIRST_SHARDS, HISTOGRAMS, SIZE_LABELS
from pipeline import report_charts as charts
from pipeline.near_dedup import PAIRS
from pipeline.report_images import data_uri, first_samples, reject_thumbnails, sample_thumbnails

SAMPLES_SHOWN = FIRST_SHARDS
PAIRS_SHOWN = 24
LANGS_SHOWN = 12
TITLES = {"clip_score": "CLIP score", "nsfw_score": "NSFW score", "watermark_score": "watermark score",
          "side": "smaller side of the image (px)", "aspect": "aspect ratio (width:height)",
          "caption_words": "words per caption"}
TICKS = {"side": [(n, f"{2 ** n:g}") for n in range(5, 13)],
         "aspect": [(-2, "1:4"), (-1, "1:2"), (0, "1:1"), (1, "2:1"), (2, "4:1")]}


def _esc(value) -> str:
    return html.escape("" if value is None else str(value))


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
    top = stats.get("clip_top") or {}
    if clip.get("filtering") and top.get("cut") is not None:
        cuts["clip_score"] = max(cuts.get("clip_score", top["cut"]), top["cut"])
    for kind in ("nsfw", "watermark"):
        if (stats.get("safety") or {}).get(kind):
            cuts[f"{kind}_score"] = stats["safety"][kind]["max"]
    return cuts


def _img(uri: str | None, alt: str) -> str:
    return f"<img src='{uri}' alt='{_esc(alt)}'>" if uri else "<div class=noimage>no image</div>"


def _reason_id(stage: str, reason: str) -> str:
    return _esc(f"reason-{stage}-{reason}")


def funnel_section(stats: dict) -> str:
    funnel = stats["funnel"]
    chart = charts.funnel([e["stage"] for e in funnel], [e["passed"] for e in funnel], [e["rejected"] for e in funnel])
    rows = "".join(
        f"<tr data-stage='{_esc(e['stage'])}'><td>{_esc(e['stage'])}</td><td class=n>{e['in']}</td>"
        f"<td class=n>{e['passed']}</td><td class=n>{e['rejected']}</td><td class=small>"
        + "<br>".join(f"<a href='#{_reason_id(e['stage'], r)}'>{_esc(r)}</a>: {n}" for r, n in e["reasons"].items())
        + "</td></tr>" for e in funnel)
    return (f"<section id=funnel><h2>Funnel</h2><figure class=chart id=funnel-chart>{chart}</figure>"
            "<table id=funnel-table><tr><th>stage</th><th>in</th><th>passed</th><th>rejected</th><th>reasons</th></tr>"
            f"{rows}</table></section>")


def histograms_section(stats: dict, written: dict) -> str:
    cuts = score_cuts(stats)
    figures = []
    for name, (low, high, bins, _) in HISTOGRAMS.items():
        counts = written.get("scores", {}).get(name)
        if not counts:
            continue
        edges = [low + (high - low) * n / bins for n in range(bins + 1)]
        kept, dropped = counts.get("kept", [0] * bins), counts.get("dropped", [0] * bins)
        chart = charts.histogram(TITLES[name], edges, kept, dropped, cut=cuts.get(name), ticks=TICKS.get(name))
        note = f"{sum(kept)} kept, {sum(dropped)} dropped" + (f"; cut {cuts[name]:g}" if name in cuts else "")
        figures.append(f"<figure class=chart data-column={name}>{chart}<figcaption>{_esc(note)}</figcaption></figure>")
    langs = written.get("langs", {})
    if langs:
        kept, dropped = langs.get("kept", {}), langs.get("dropped", {})
        shown = sorted(set(kept) | set(dropped), key=lambda lang: (-kept.get(lang, 0), -dropped.get(lang, 0), lang))
        shown = shown[:LANGS_SHOWN]
        chart = charts.categories("caption language (fastText)", shown, [kept.get(lang, 0) for lang in shown],
                                  [dropped.get(lang, 0) for lang in shown])
        figures.append(f"<figure class=chart data-column=lang>{chart}<figcaption>{len(kept)} language(s) kept"
                       "</figcaption></figure>")
    sizes = written.get("sizes", {})
    size_rows = "".join(f"<tr><td>{_esc(label)}</td><td class=n>{sizes.get(label, 0)}</td></tr>"
                        for label in SIZE_LABELS)
    return (f"<section id=histograms><h2>Distributions</h2><div class=charts>{''.join(figures)}</div>"
            "<table id=sizes><tr><th>smaller side of the samples' original images (px)</th><th>samples</th></tr>"
            f"{size_rows}</table></section>")


def accepted_section(out_dir: str, written: dict) -> str:
    shown = first_samples(out_dir, written["first_shards"], SAMPLES_SHOWN)
    grid = "".join(f"<figure class=sample>{_img(uri, caption)}<figcaption>{_esc(caption)}<br><code>{_esc(key)}</code>"
                   "</figcaption></figure>" for key, caption, uri in shown)
    return (f"<section id=accepted><h2>Accepted samples</h2><p class=small>the first {len(shown)} of "
            f"{written['samples']}, in shard order</p><div class=grid>{grid or '<p>no samples</p>'}</div></section>")


def review_section(out_dir: str, stats: dict, written: dict) -> str:
    queue = written.get("review", [])
    if not queue:
        return "<section id=review><h2>Review queue</h2><p>no CLIP scores: nothing to review by score</p></section>"
    images = sample_thumbnails(out_dir, [(row["shard"], row["key"]) for row in queue])
    weightless = not (stats.get("clip") or {}).get("filtering", True)
    random = ". CLIP had no weights: these scores are random" if weightless else ""
    rows = "".join(
        f"<tr data-score='{row['clip_score']:.6f}' data-key='{_esc(row['key'])}'><td class=n>{rank}</td>"
        f"<td>{_img(images.get(row['key']), row['caption'])}</td><td class=n>{row['clip_score']:.4f}</td>"
        f"<td>{_esc(row['caption'])}<br><code>{_esc(row['key'])}</code> <span class=small>{_esc(row['url'])}</span>"
        "</td></tr>" for rank, row in enumerate(queue, 1))
    return ("<section id=review><h2>Review queue</h2><p class=small>accepted samples with the lowest CLIP scores "
            f"first: the {len(queue)} most worth a person's look (<code>altcap inspect OUT_DIR --key KEY</code> "
            f"shows one whole){random}</p><table id=review-queue>"
            f"<tr><th>#</th><th>image</th><th>CLIP</th><th>caption</th></tr>{rows}</table></section>")


def rejects_section(out_dir: str, stats: dict, written: dict) -> str:
    examples = written.get("examples", {})
    thumbs = reject_thumbnails(out_dir, [row for reasons in examples.values() for rows in reasons.values()
                                         for row in rows])
    blocks = []
    for entry in stats["funnel"]:
        for reason, count in entry["reasons"].items():
            rows = examples.get(entry["stage"], {}).get(reason, [])
            uris = [thumbs.get((row.get("file"), row.get("key"))) for row in rows]
            if any(uris):  # a grid where the rejects had images, a compact table where none had
                shown = "<div class=grid>" + "".join(
                    f"<figure class=reject>{_img(uri, row['caption'] or '')}<figcaption>{_esc(row['caption'])}<br>"
                    f"<span class=small>{_esc(row['detail'])}<br>{_esc(row['url'])}</span></figcaption></figure>"
                    for row, uri in zip(rows, uris)) + "</div>"
            else:
                shown = "<table class=reject-rows>" + "".join(
                    f"<tr class=reject><td>{_esc(row['caption'])}</td><td class=small>{_esc(row['detail'])}</td>"
                    f"<td class=small>{_esc(row['url'])}</td></tr>" for row in rows) + "</table>"
            blocks.append(
                f"<div class=reason id='{_reason_id(entry['stage'], reason)}' data-stage='{_esc(entry['stage'])}' "
                f"data-reason='{_esc(reason)}'><h3>{_esc(entry['stage'])}: {_esc(reason)} <span class=small>{count} "
                f"record(s); <code>altcap ls OUT_DIR --reason {_esc(reason)}</code></span></h3>{shown}</div>")
    pairs = _pairs(out_dir)
    pair_grid = "".join(f"<figure class=pair><img src='{uri}' alt='near-duplicate pair'><figcaption>dropped "
                        f"<code>{_esc(key)}</code> (left) beside the image kept</figcaption></figure>"
                        for uri, key in pairs)
    near = f"<h3 id=near-pairs>Near-duplicates dropped</h3><div class=grid>{pair_grid}</div>" if pairs else ""
    return f"<section id=rejects><h2>Rejects by reason</h2>{''.join(blocks) or '<p>no rejects</p>'}{near}</section>"


def _marked(caption: str, entities: list[dict]) -> str:
    """The caption with each entity the hypernymizer found marked."""
    out, at = [], 0
    for entity in sorted(entities, key=lambda e: e["start"]):
        if entity["start"] < at:
            continue
        out += [_esc(caption[at:entity["start"]]), f"<mark>{_esc(caption[entity['start']:entity['end']])}</mark>"]
        at = entity["end"]
    return "".join(out) + _esc(caption[at:])


def hypernyms_section(written: dict) -> str:
    rewrites = written.get("rewrites", [])
    rows = "".join(
        f"<tr><td>{_marked(row['caption'], row['entities'] or [])}</td><td>{_esc(row['caption_hypernymized'])}</td>"
        "<td class=small>" + "<br>".join(
            f"{_esc(e['text'])} &rarr; {_esc(e['hypernym']) if e.get('kept') else '(dropped)'} "
            f"({_esc(e['type'])}, {_esc(e['source'])})" for e in row["entities"] or [])
        + f"</td><td><code>{_esc(row['key'])}</code></td></tr>" for row in rewrites)
    body = (f"<table id=rewrites><tr><th>caption</th><th>hypernymized</th><th>entities found</th><th>key</th></tr>"
            f"{rows}</table>" if rows else "<p>no caption was rewritten (the step is off, or found no entity)</p>")
    return f"<section id=hypernyms><h2>Hypernymized captions</h2>{body}</section>"


def tokens_section(stats: dict, written: dict) -> str:
    tokens = written.get("tokens") or {}
    if not tokens.get("samples") or not stats.get("tokens"):
        return ""
    info = stats["tokens"]
    codes = tokens["codes"]
    lengths = {int(n): c for n, c in tokens["text_lengths"].items()}
    width = tokens["text_width"]
    bins = min(width, 32)
    edges = [width * n / bins for n in range(bins + 1)]
    counts = [0] * bins
    for length, n in lengths.items():
        counts[min(int(length * bins / width), bins - 1)] += n
    used = sum(1 for n in codes if n)
    summary = (f"{tokens['samples']} samples; {used} of {info['codebook_size']} image codes used, perplexity "
               f"{charts.perplexity(codes):.0f}; captions {min(lengths)}-{max(lengths)} ids of {width}, "
               f"{info['captions_truncated']} cut to fit")
    usage = charts.code_usage(codes, info["codebook_size"])
    lengths_chart = charts.histogram("caption length (text ids)", edges, counts, [0] * bins, cut=width,
                                     cut_label=f"{width} ids: longer captions are cut")
    return (f"<section id=tokens><h2>Tokens</h2><p class=small>{_esc(tokens_line(info))}</p><p>{_esc(summary)}</p>"
            f"<div class=charts><figure class=chart data-column=image_codes>{usage}</figure>"
            f"<figure class=chart data-column=text_length>{lengths_chart}</figure></div></section>")


def _pairs(out_dir: str) -> list[tuple[str, str]]:
    """(data URI, loser key) of the near-duplicate pairs the pass saved (``pipeline.near_dedup``)."""
    return [(data_uri(fileio.read_bytes(path)), path.rsplit("/", 1)[-1].removesuffix(".jpg"))
            for path in sorted(fileio.match(fileio.join(out_dir, PAIRS, "*.jpg")))[:PAIRS_SHOWN]]


STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; max-width: 1400px; }
table { border-collapse: collapse; margin-bottom: 1.5em; }
td, th { border-bottom: 1px solid #ddd; padding: 4px 10px; text-align: left; vertical-align: top; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
.small { font-size: 85%; color: #555; overflow-wrap: anywhere; }
.grid { display: flex; flex-wrap: wrap; gap: 8px; }
.charts { display: flex; flex-wrap: wrap; gap: 16px; align-items: flex-start; }
figure { margin: 0; }
figure.sample, figure.reject { width: 164px; font-size: 80%; }
figure.sample img, figure.reject img, #review-queue img { max-width: 160px; max-height: 160px; }
figure.pair img { width: 256px; }
figure.chart svg { max-width: 100%; height: auto; }
figcaption { font-size: 85%; overflow-wrap: anywhere; }
.noimage { width: 120px; height: 60px; background: #eee; color: #888; font-size: 80%; display: flex;
           align-items: center; justify-content: center; }
.reason { margin-bottom: 1em; }
.reason h3 { font-size: 105%; margin-bottom: 4px; }
table.reject-rows td { max-width: 32em; }
mark { background: #fde68a; }
"""


def render(out_dir: str, stats: dict, written: dict) -> str:
    check = "ok" if stats["check"]["ok"] else "FAILED: " + "; ".join(stats["check"]["problems"])
    lines = [clip_summary(stats["clip"], stats.get("clip_top"))] if stats.get("clip") else []
    if stats.get("concepts"):
        lines.append(concepts_line(stats["concepts"]))
    inputs = "<br>".join(_esc(f"{kind}: {path}") for kind, path in stats["inputs"])
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>altcap run report</title><style>{STYLE}</style></head><body>
<h1>altcap run report</h1>
<p>{stats['samples']} samples in {stats['shards']} shard(s), {stats['rejects']} rejects;
accounting check: <b>{_esc(check)}</b>; {stats['timings']['wall_s']:.1f} s; started
{_esc(stats['timings']['started'])}.</p>
<p class=small>inputs: {inputs}</p>
{''.join(f'<p class=small>{_esc(line)}</p>' for line in lines)}
<p class=small><a href="#funnel">funnel</a> · <a href="#histograms">distributions</a> ·
<a href="#accepted">accepted</a> · <a href="#review">review queue</a> · <a href="#rejects">rejects</a> ·
<a href="#hypernyms">hypernyms</a>{' · <a href="#tokens">tokens</a>' if stats.get('tokens') else ''}</p>
{funnel_section(stats)}
{histograms_section(stats, written)}
{accepted_section(out_dir, written)}
{review_section(out_dir, stats, written)}
{rejects_section(out_dir, stats, written)}
{hypernyms_section(written)}
{tokens_section(stats, written)}
</body></html>
"""


def write_report(out_dir: str, stats: dict, written: dict) -> str:
    """The report of a run whose job wrote the tally ``written``."""
    path = fileio.join(out_dir, "report.html")
    fileio.write_bytes(path, render(out_dir, stats, written).encode("utf-8"))
    return path
