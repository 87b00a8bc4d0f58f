"""The ``altcap`` command line.

    altcap run --input PATH_OR_GLOB --output DIR [--config FILE] [--set key=value ...] [Beam options]
    altcap run --retry-failed OUT_DIR [Beam options]   fetch again what failed for a transient reason
    altcap demo [--output DIR]
    altcap synth --prompts FILE --output DIR --generator G [-n N --keep K --min-score S]   generated samples
    altcap synth --from-dataset OUT_DIR --keep-rows R --output DIR --generator altcap:CKPT   variations
    altcap text [--preset NAME] FILE|-   try the text rules: one caption per line in, JSON lines out
    altcap config            print every setting with its default, as YAML
    altcap kb build --wikidata DUMP.json[.bz2|.gz] --output KB   compile a Wikidata KB for hypernyms
    altcap hypernymize [--kb KB] FILE|-   try hypernymization: one caption per line in, JSON lines out
    altcap phash FOLDER_OR_IMAGE ... [--out FILE]   perceptual hashes of an evaluation set (dedup.against)
    altcap stats OUT_DIR | altcap report OUT_DIR   a finished run's funnel; its report.html again
    altcap ls OUT_DIR [--reason R]   the keys rejected for a reason (without: the count of each reason)
    altcap inspect OUT_DIR --key K [--into DIR]   one sample's record and image, or a reject's
    altcap review OUT_DIR --reject KEY ... [--reject-file FILE] [--note TEXT]   reject samples a person judged
    altcap tokenize OUT_DIR [--config FILE] [--set key=value ...] [Beam options]   token files for finished shards
    altcap score OUT_DIR [--config FILE] [--set key=value ...] [Beam options]   CLIP for a folder made without it
    altcap tokenizer train OUT_DIR [--vocab N]   a byte-level BPE trained on a run's final captions
    altcap tokens show OUT_DIR [--key K | -n N]  decoded codes beside the original, with the decoded caption
    altcap train --config FILE [--set key=value ...]   train the DALL-E-style transformer on token files
    altcap sample --checkpoint DIR --prompt TEXT [-n N --keep K]   draw images, keep the best by CLIP score
    altcap mix FOLDER[=WEIGHT] ... --output FILE.json   a manifest mixing folders' tokens by weight for train

Errors a user can cause end with one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import builtins
import codecs
import logging
import re
import sys

from filters.text_presets import PRESETS
from hypernymize.config import HypernymizeConfig
from pipeline.config import Config, ConfigError, load_config
from synth.mix import mix_arguments, run_mix
from trainer.commands import run_sample, run_train, sample_arguments, train_arguments


def _user_errors() -> tuple[type[Exception], ...]:
    from crawl.lists import ListFormatError
    from filters.langid import LangIdError
    from filters.lexicons import LexiconError
    from hypernymize.spacy_tagger import SpacyModelError
    from hypernymize.wikidata_kb import KbError
    from pipeline.inputs import InputError
    from pipeline.run import OutputFolderError
    from pipeline.shard_builder import StaleShardError
    from synth.generators import GeneratorError
    from synth.prompts import PromptError
    from tokens import TokenizerError
    from tokens.manifest import TokenizerMismatch

    return (ConfigError, InputError, ListFormatError, OutputFolderError, StaleShardError, LangIdError,
            LexiconError, KbError, SpacyModelError, TokenizerError, TokenizerMismatch, PromptError, GeneratorError,
            OSError)


QUIET = ("apitools not found", "StaleShardError")
# A worker's OSError as the runner passes it on: "OSError: [Errno 28] ... [while running 'BuildShards']"
WORKER_OS_ERROR = re.compile(r"\b(\w+Error): (\[Errno \d+\] .*?)(?: \[while running '[^']*'\])?$")


def worker_os_error(failure: RuntimeError) -> str | None:
    """The OSError that stopped a job in a worker (a full disk, an output it may not write), when it is
    what the job ended with: Beam hands a worker's error on as a RuntimeError whose text ends in it."""
    lines = str(failure).strip().splitlines()
    found = WORKER_OS_ERROR.search(lines[-1]) if lines else None
    kind = getattr(builtins, found.group(1), None) if found else None
    return found.group(2) if isinstance(kind, type) and issubclass(kind, OSError) else None


# The DirectRunner's worker processes log through it: each line as "Worker: " and its log entry as text.
RELAY = "apache_beam.runners.portability.local_job_service"
RELAYED = re.compile(r'Worker: .*?\bmessage: "((?:[^"\\]|\\.)*)".*?\blog_location: "((?:[^"\\]|\\.)*)"')


class WorkerLines(logging.Filter):
    """A worker process's log line, as the DirectRunner relays it, made the line it was (under the name
    ``worker``); Beam's own lines, the workers' and the relay's, at the level of Beam's other lines."""

    def __init__(self, verbose: bool):
        super().__init__()
        self.verbose = verbose

    def filter(self, record: logging.LogRecord) -> bool:
        beams = logging.WARNING if self.verbose else logging.ERROR  # the level of Beam's own lines
        found = RELAYED.match(record.getMessage())
        if found is None:
            return record.levelno >= beams
        message, location = (codecs.escape_decode(part.encode())[0].decode("utf-8", "replace")
                             for part in found.groups())
        if "/apache_beam/" in location and record.levelno < beams:
            return False
        record.msg, record.args, record.name = message, (), "worker"
        return True


def setup_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("altcap").setLevel(logging.DEBUG if verbose else logging.INFO)
    relay = logging.getLogger(RELAY)  # workers log altcap's lines at the launcher's level (pipeline.run)
    relay.setLevel(logging.DEBUG)
    for earlier in [each for each in relay.filters if isinstance(each, WorkerLines)]:
        relay.removeFilter(earlier)
    relay.addFilter(WorkerLines(verbose))
    if not verbose:  # Beam relays every worker's start-up chatter; keep the run's own lines
        logging.getLogger("apache_beam").setLevel(logging.ERROR)
        for handler in logging.getLogger().handlers:  # a stale shard ends the run with one line of its own
            handler.addFilter(lambda record: not any(noise in record.getMessage() for noise in QUIET))


def add_settings(command: argparse.ArgumentParser, example: str) -> None:
    command.add_argument("--config", metavar="FILE", help="YAML settings (see `altcap config`)")
    command.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                         help=f"override one setting, e.g. --set {example}")


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="altcap", description=__doc__.split("\n\n")[0])
    commands = top.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="build a dataset from crawls or url+caption lists",
                              epilog="Other options (--runner, --direct_num_workers, "
                                     "--project, ...) are passed to Apache Beam.")
    run.add_argument("--input", action="append", metavar="PATH_OR_GLOB",
                     help="WARC/WAT files, url+caption lists, page URL lists or an img2dataset "
                          "output folder; repeat for several")
    run.add_argument("--output", metavar="DIR")
    run.add_argument("--retry-failed", metavar="OUT_DIR",
                     help="instead of --input and --output: fetch again what the run in OUT_DIR could not "
                          "download for a transient reason (timeout, reset, 5xx, 429) and merge what succeeds "
                          "into its shards, as if it had never failed")
    add_settings(run, "resize.image_size=384")
    run.add_argument("--input-format", default="auto",
                     help="warc, wat, tsv, csv, jsonl, parquet, pages or img2dataset "
                          "(default: from the file name)")
    run.add_argument("--overwrite", action="store_true",
                     help="replace a previous run in --output instead of resuming it")
    run.add_argument("--verbose", action="store_true")

    synth = commands.add_parser("synth", help="images generated on purpose from prompts, ranked by CLIP: a "
                                              "dataset like any run's", epilog="Other options (--runner, ...) are "
                                                                               "passed to Apache Beam.")
    synth.add_argument("--prompts", metavar="FILE",
                       help="prompts, one a line, or templates with {slots} (their values from --slot files); or "
                            "a .yaml with templates, slots, prompts, cap and seed")
    synth.add_argument("--from-dataset", metavar="OUT_DIR",
                       help="instead of --prompts: variations of a run's samples that have tokens, each keeping "
                            "--keep-rows rows of the sample's code grid (the bundled model draws the rest)")
    synth.add_argument("--keep-rows", type=int, default=0, metavar="R", help="with --from-dataset: rows kept")
    synth.add_argument("--output", required=True, metavar="DIR")
    synth.add_argument("--generator", required=True, metavar="G",
                       help="altcap:CHECKPOINT (the bundled trainer's model) or diffusers:MODEL_OR_FOLDER")
    synth.add_argument("-n", type=int, default=4, metavar="N", help="images drawn per prompt (default 4)")
    synth.add_argument("--keep", type=int, default=0, metavar="K",
                       help="keep the best K of each prompt's N by CLIP score (default 0: all that pass)")
    synth.add_argument("--min-score", type=float, metavar="S", help="drop the images whose CLIP score is under S")
    synth.add_argument("--slot", action="append", default=[], metavar="NAME=FILE",
                       help="the values of a template slot, one a line; repeat for several")
    synth.add_argument("--cap", type=int, metavar="C", help="at most C prompts: a sample of the expansion, by --seed")
    synth.add_argument("--seed", type=int, default=0, help="seeds the prompt sample and every image (default 0)")
    add_settings(synth, "synth.guidance=5")
    synth.add_argument("--overwrite", action="store_true", help="replace a previous run in --output")
    synth.add_argument("--verbose", action="store_true")

    demo = commands.add_parser("demo", help="run the whole spine offline on real photos")
    demo.add_argument("--output", default="demo-out", metavar="DIR")
    demo.add_argument("--verbose", action="store_true")

    text = commands.add_parser("text", help="try the text rules on captions, one per line; "
                                             "writes one JSON line per caption")
    text.add_argument("file", metavar="FILE|-", nargs="?", help="UTF-8 text, one caption per line; - reads stdin")
    text.add_argument("--rules", action="store_true", help="print the preset's rules with overrides applied, as YAML")
    text.add_argument("--preset", choices=sorted(PRESETS), help="text rules preset (default: the config's)")
    add_settings(text, "text.min_words=5")

    commands.add_parser("config", help="print all settings with their defaults as YAML")

    kb = commands.add_parser("kb", help="knowledge bases for hypernymization")
    kb_commands = kb.add_subparsers(dest="kb_command", required=True)
    build = kb_commands.add_parser("build", help="compile a Wikidata JSON dump into a memory-mapped KB")
    build.add_argument("--wikidata", required=True, metavar="DUMP",
                       help="Wikidata JSON dump (.json, .json.gz, .json.bz2)")
    build.add_argument("--output", required=True, metavar="KB", help="the KB folder to write")
    build.add_argument("--languages", default="en", help="label and alias languages, comma-separated (default: en)")
    build.add_argument("--min-sitelinks", type=int, default=0, metavar="N",
                       help="keep only items with at least N sitelinks (notability; default 0)")
    hyp = commands.add_parser("hypernymize", help="rewrite captions, one per line, as Conceptual Captions "
                                                  "did; writes one JSON line per caption")
    hyp.add_argument("file", metavar="FILE|-", help="UTF-8 text, one caption per line; - reads stdin")
    hyp.add_argument("--kb", metavar="KB", help="a Wikidata KB folder (altcap kb build)")
    hyp.add_argument("--mode", choices=sorted(HypernymizeConfig.CHOICES["mode"]), default=HypernymizeConfig.mode)
    hyp.add_argument("--style", choices=sorted(HypernymizeConfig.CHOICES["style"]), default=HypernymizeConfig.style)
    hyp.add_argument("--min-population", type=int, default=HypernymizeConfig.min_population, metavar="N",
                     help=f"GeoNames cities from this many people (default {HypernymizeConfig.min_population})")
    hyp.add_argument("--drop-counts", action="store_true",
                     help="drop a bare count before a plural noun too, as the Conceptual Captions paper did "
                          "(\"Two sculptures\" -> \"sculptures\")")
    hyp.add_argument("--spacy-model", default=HypernymizeConfig.spacy_model, metavar="NAME|DIR",
                     help="spaCy NER to help find entities: auto (en_core_web_sm when installed; the "
                          "default), off, a model name or a folder nlp.to_disk wrote")

    phash = commands.add_parser("phash", help="perceptual hashes of images, one per line: an evaluation set for "
                                              "--set dedup.against=FILE")
    phash.add_argument("paths", nargs="+", metavar="FOLDER_OR_IMAGE",
                       help="image files, or folders searched recursively")
    phash.add_argument("--out", metavar="FILE", help="where to write them (default: standard output)")

    tokenize = commands.add_parser("tokenize", help="write token files for an output folder's finished shards "
                                                    "(idempotent, resumes shard by shard)",
                                   epilog="Other options (--runner, ...) are passed to Apache Beam.")
    tokenize.add_argument("output", metavar="OUT_DIR", help="the output folder of a run")
    add_settings(tokenize, "tokens.image_model=org/repo/subfolder")
    tokenize.add_argument("--verbose", action="store_true")

    score = commands.add_parser("score", help="CLIP scores, embeddings and cuts for a finished output folder whose "
                                              "run had no CLIP (idempotent, resumes shard by shard)",
                                epilog="Other options (--runner, ...) are passed to Apache Beam.")
    score.add_argument("output", metavar="OUT_DIR", help="the output folder of a run")
    add_settings(score, "clip.top_fraction=0.3")
    score.add_argument("--verbose", action="store_true")

    tokenizer = commands.add_parser("tokenizer", help="text tokenizers for the tokens stage")
    tokenizer_commands = tokenizer.add_subparsers(dest="tokenizer_command", required=True)
    train = tokenizer_commands.add_parser("train", help="train a byte-level BPE on a run's final captions")
    train.add_argument("output", metavar="OUT_DIR", help="the output folder of a run")
    train.add_argument("--vocab", type=int, default=16384, metavar="N", help="ids in the vocabulary (DALL-E: 16384)")
    train.add_argument("--into", metavar="DIR", help="where to write tokenizer.json (default: OUT_DIR/tokenizer)")

    tokens = commands.add_parser("tokens", help="look at an output folder's tokens")
    tokens_commands = tokens.add_subparsers(dest="tokens_command", required=True)
    show = tokens_commands.add_parser("show", help="decode samples' codes and ids: a PNG of original | "
                                                   "reconstruction with the decoded caption")
    show.add_argument("output", metavar="OUT_DIR", help="the output folder of a run")
    show.add_argument("--key", action="append", default=[], metavar="K", help="a sample key; repeat for several")
    show.add_argument("-n", type=int, default=4, metavar="N", help="without --key: the first N samples (default 4)")
    show.add_argument("--png", metavar="FILE", help="where to write the picture (default: OUT_DIR/tokens/show.png)")

    stats = commands.add_parser("stats", help="print a finished run's funnel")
    stats.add_argument("output", metavar="OUT_DIR", help="the output folder of a run")
    report = commands.add_parser("report", help="write a finished run's report.html again")
    report.add_argument("output", metavar="OUT_DIR", help="the output folder of a run")
    ls = commands.add_parser("ls", help="the keys rejected for a reason, or the count of each reason")
    ls.add_argument("output", metavar="OUT_DIR", help="the output folder of a run")
    ls.add_argument("--reason", metavar="R", help="list the keys rejected for R (key, stage, detail per line)")
    inspect = commands.add_parser("inspect", help="one record of a run: a sample with its image, or a reject")
    inspect.add_argument("output", metavar="OUT_DIR", help="the output folder of a run")
    inspect.add_argument("--key", required=True, metavar="K", help="the sample key")
    inspect.add_argument("--into", default=".", metavar="DIR", help="where the image goes (default: here)")
    review = commands.add_parser("review", help="reject samples a person found wrong (report.html's review "
                                                "queue): they move to rejects (human_review), and stats.json, "
                                                "written.json and report.html follow")
    review.add_argument("output", metavar="OUT_DIR", help="the output folder of a run")
    review.add_argument("--reject", nargs="+", action="extend", default=[], metavar="KEY", help="sample keys")
    review.add_argument("--reject-file", action="append", default=[], metavar="FILE",
                        help="a key first on each line (# comments; - reads standard input)")
    review.add_argument("--note", default="", metavar="TEXT", help="why, kept as the rejects' detail")

    train_arguments(commands.add_parser("train", help="train the DALL-E-style transformer on token files "
                                                      "(torchrun -m trainer.train for many GPUs)"))
    sample_arguments(commands.add_parser("sample", help="draw images from a trained checkpoint and keep the "
                                                        "best by CLIP score"))
    mix_arguments(commands.add_parser("mix", help="a manifest mixing output folders' token files by weight "
                                                  "(e.g. 80%% real, 20%% synthetic) for altcap train"))
    with_examples(top)
    return top


EXAMPLES = {
    "run": "altcap run --input 'crawl/*.warc.gz' --output out/ --set clip.enabled=true",
    "demo": "altcap demo --output demo-out",
    "synth": "altcap synth --prompts classes.yaml --output synth-out/ --generator diffusers:sd-turbo/ -n 8 --keep 2",
    "text": "echo 'A red fox in the snow' | altcap text --preset cc3m -",
    "config": "altcap config > my.yaml",
    "kb": "altcap kb build --wikidata latest-all.json.bz2 --output kb/",
    "hypernymize": "echo 'Harrison Ford at the premiere' | altcap hypernymize -",
    "phash": "altcap phash imagenet-val/ --out imagenet-val.phash",
    "tokenize": "altcap tokenize out/ --set tokens.image_model=org/repo/vqgan",
    "score": "altcap score out/ --set clip.top_fraction=0.3",
    "tokenizer": "altcap tokenizer train out/ --vocab 16384",
    "tokens": "altcap tokens show out/ -n 4",
    "stats": "altcap stats out/",
    "report": "altcap report out/",
    "ls": "altcap ls out/ --reason http_404",
    "inspect": "altcap inspect out/ --key 3f2a9c0e1b7d4a6e8c21 --into /tmp",
    "review": "altcap review out/ --reject 3f2a9c0e1b7d4a6e8c21 --note 'the caption names another bird'",
    "train": "altcap train --set data=[out/] --set size=tiny --set max_steps=1000",
    "sample": "altcap sample --checkpoint ckpt/ --prompt 'a red fox in the snow' -n 8 --keep 2",
    "mix": "altcap mix out/=0.8 synth-out/=0.2 --output mix.json",
}


def with_examples(top: argparse.ArgumentParser) -> None:
    """An example under every command's --help, and a few under altcap --help."""
    commands = next(action for action in top._actions if isinstance(action, argparse._SubParsersAction))
    for name, command in commands.choices.items():
        command.formatter_class = argparse.RawDescriptionHelpFormatter
        command.epilog = "\n\n".join(filter(None, (command.epilog, f"example:\n  {EXAMPLES[name]}")))
        for action in command._actions:  # kb build, tokenizer train, tokens show: their parent's example
            if isinstance(action, argparse._SubParsersAction):
                for nested in action.choices.values():
                    nested.formatter_class = argparse.RawDescriptionHelpFormatter
                    nested.epilog = f"example:\n  {EXAMPLES[name]}"
    top.formatter_class = argparse.RawDescriptionHelpFormatter
    top.epilog = "examples:\n" + "".join(f"  {EXAMPLES[name]}\n" for name in ("demo", "run", "stats", "inspect"))


def run_phash(args) -> int:
    """``altcap phash``: one ``HASH  # path`` line per image read; what could not be read, on stderr."""
    import os

    from filters.image_config import ImageConfig
    from filters.near_dup import file_hashes, files_under

    files = []
    for path in args.paths:
        if not os.path.exists(path):
            raise ConfigError(f"altcap phash: {path} does not exist")
        files += files_under(path)
    found = list(file_hashes(files, ImageConfig().max_pixels))
    lines = [f"{phash}  # {path}\n" for path, phash in found if phash is not None]
    unreadable = len(found) - len(lines)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as out:
            out.writelines(lines)
    else:
        sys.stdout.writelines(lines)
    print(f"{len(lines)} images hashed, {unreadable} files not read as images", file=sys.stderr)
    return 0


def finished_stats(out_dir: str) -> dict:
    import json
    import os

    path = os.path.join(out_dir, "stats.json")
    if not os.path.isfile(path):
        raise ConfigError(f"{out_dir} holds no finished run (no stats.json)")
    with open(path, encoding="utf-8") as file:
        return json.load(file)


def run_stats(args) -> int:
    """``altcap stats``: the funnel of a finished run, as ``altcap run`` ends."""
    print_summary(finished_stats(args.output))
    return 0


def run_report(args) -> int:
    """``altcap report``: report.html written again from stats.json and the job's tally."""
    from dataset import tally
    from pipeline.report import write_report

    stats = finished_stats(args.output)
    print(f"report for a person: {write_report(args.output, stats, tally.read(args.output))}")
    return 0


def run_ls(args) -> int:
    """``altcap ls``: key, stage and detail of each record rejected for ``--reason``; without it, the
    reject count of each reason. Exit status 1 when no record was rejected for the reason."""
    from dataset.inspect import reasons, rejected_keys

    if not args.reason:
        for reason, n in reasons(args.output).items():
            print(f"{n}\t{reason}")
        return 0
    found = 0
    for key, stage, detail in rejected_keys(args.output, args.reason):
        found += 1
        print(f"{key}\t{stage}\t{detail or ''}")
    if not found:
        print(f"no record was rejected for {args.reason!r}; the reasons here: {', '.join(reasons(args.output))}",
              file=sys.stderr)
    return 0 if found else 1


def run_inspect(args) -> int:
    """``altcap inspect``: a record's full row as JSON, and the sample's image written into ``--into``."""
    import json
    import os

    from dataset.inspect import find_record

    found = find_record(args.output, args.key)
    if found is None:
        raise ConfigError(f"{args.output} has no sample or reject with key {args.key}")
    row, image, ext = found
    print(json.dumps(row, indent=1, ensure_ascii=False, default=str))
    if image is not None:
        path = os.path.join(args.into, f"{args.key}.{ext}")
        with open(path, "wb") as file:
            file.write(image)
        print(f"image: {path}")
    return 0


def run_review(args) -> int:
    """``altcap review``: what moved and what is left; exit status 3 when the funnel no longer adds up."""
    from pipeline.funnel import AccountingError
    from pipeline.review import keys_given, review

    try:
        done = review(args.output, keys_given(args.reject, args.reject_file), args.note)
    except AccountingError as err:
        print(f"altcap: accounting check FAILED: {err}", file=sys.stderr)
        return 3
    if done["already"]:
        print(f"{len(done['already'])} sample(s) rejected by a person before: left as they are")
    print(f"{done['moved']} samples moved to rejects (human_review); {done['samples']} samples left")
    print(f"report for a person: {done['report']}")
    return 0


def run_tokenizer(args) -> int:
    """``altcap tokenizer train``: where the tokenizer went, and how to use it."""
    from tokens.train import train_on_run

    folder, captions = train_on_run(args.output, args.vocab, args.into)
    print(f"trained on {captions} captions: {folder}/tokenizer.json")
    print(f"use it with: --set tokens.text_tokenizer={folder}")
    return 0


def run_tokens(args) -> int:
    """``altcap tokens show``: the PNG written, and each sample's decoded caption."""
    from tokens.show import show_tokens

    path, shown = show_tokens(args.output, keys=args.key, first=args.n, png=args.png)
    for key, caption in shown:
        print(f"{key}\t{caption}")
    print(f"original | reconstruction: {path}")
    return 0


def run_hypernymize(args) -> int:
    """``altcap hypernymize``: caption, rewritten, entities, rejected, reason per line."""
    import dataclasses
    import itertools
    import json

    from hypernymize.loading import load_hypernymizer

    try:
        source = sys.stdin if args.file == "-" else open(args.file, encoding="utf-8", errors="replace")
    except OSError as err:
        raise ConfigError(f"cannot read {args.file}: {err.strerror}") from None
    hypernymizer = load_hypernymizer(kb=args.kb, min_population=args.min_population, mode=args.mode,
                                     style=args.style, drop_counts=args.drop_counts, spacy_model=args.spacy_model)
    tagger = hypernymizer.tagger
    with source:
        lines = (line.rstrip("\r\n") for line in source)
        while chunk := list(itertools.islice(lines, 256)):  # the tagger runs a batch at a time
            for caption, tags in zip(chunk, tagger.tag_many(chunk) if tagger else [None] * len(chunk)):
                result = hypernymizer.rewrite(caption, tags)
                print(json.dumps({"caption": result.caption, "rewritten": result.rewritten,
                                  "entities": [dataclasses.asdict(e) for e in result.entities],
                                  "rejected": result.rejected, "reason": result.reason}, ensure_ascii=False))
    return 0


def run_kb(args) -> int:
    """``altcap kb build``: the manifest of the KB it wrote, as JSON, on stdout."""
    import json

    from hypernymize.wikidata_kb import build_kb

    languages = tuple(part.strip() for part in args.languages.split(",") if part.strip())
    manifest = build_kb(args.wikidata, args.output, languages=languages, min_sitelinks=args.min_sitelinks)
    print(json.dumps(manifest, indent=1, ensure_ascii=False))
    return 0


def run_text(args) -> int:
    """``altcap text``: each caption's verdict as a JSON line on stdout, a tally on stderr."""
    import collections
    import json

    from filters.text_filter import TextFilter

    overrides = list(args.set) + ([f"text.preset={args.preset}"] if args.preset else [])
    config = load_config(args.config, overrides)
    if args.rules:
        import dataclasses

        import yaml

        rules = {k: list(v) if isinstance(v, tuple) else v
                 for k, v in dataclasses.asdict(config.text.rules()).items()}
        print(yaml.safe_dump({"preset": config.text.preset, **rules}, sort_keys=False), end="")
        return 0
    if args.file is None:
        raise ConfigError("altcap text: give a FILE, or - for standard input")
    text_filter = TextFilter(config.text.rules(), config.text.lang_model)
    try:
        source = sys.stdin if args.file == "-" else open(args.file, encoding="utf-8", errors="replace")
    except OSError as err:
        raise ConfigError(f"cannot read {args.file}: {err.strerror}") from None
    tally: collections.Counter = collections.Counter()
    with source:
        while True:
            lines = [line.rstrip("\r\n") for _, line in zip(range(config.text.batch_size), source)]
            if not lines:
                break
            for line, verdict in zip(lines, text_filter.check_batch(lines)):
                tally[verdict.reason or "pass"] += 1
                print(json.dumps({"text": line, "pass": verdict.passed, "reason": verdict.reason,
                                  "detail": verdict.detail, "caption": verdict.caption,
                                  "lang": verdict.lang, "lang_score": verdict.lang_score},
                                 ensure_ascii=False))
    total = sum(tally.values())
    print(f"{config.text.preset}: {tally['pass']} of {total} passed; " +
          ", ".join(f"{reason} {n}" for reason, n in tally.most_common() if reason != "pass"),
          file=sys.stderr)
    return 0


def check_run_arguments(args) -> None:
    """``altcap run`` takes --input and --output, or --retry-failed alone (run.json names the rest)."""
    if args.retry_failed and (args.input or args.output or args.overwrite or args.input_format != "auto"):
        raise ConfigError("--retry-failed OUT_DIR takes the inputs and the output folder from OUT_DIR/run.json: "
                          "give no --input, --output, --input-format or --overwrite")
    if not args.retry_failed and not (args.input and args.output):
        raise ConfigError("altcap run needs --input and --output (or --retry-failed OUT_DIR)")


def run_synth(args, beam_args: list[str]) -> dict:
    """``altcap synth``: from prompts, or variations of a finished folder's samples."""
    from pipeline.synth_run import synth, variations

    if bool(args.prompts) == bool(args.from_dataset):
        raise ConfigError("altcap synth takes --prompts FILE, or --from-dataset OUT_DIR with --keep-rows R")
    if args.from_dataset:
        if args.keep_rows < 1 or args.slot or args.cap is not None:
            raise ConfigError("--from-dataset needs --keep-rows R (R >= 1) and takes no --slot or --cap")
        return variations(args.from_dataset, args.output, args.generator, keep_rows=args.keep_rows, per_sample=args.n,
                          keep=args.keep, min_score=args.min_score, seed=args.seed, config_file=args.config,
                          overrides=args.set, overwrite=args.overwrite, beam_args=beam_args)
    return synth(args.prompts, args.output, args.generator, per_prompt=args.n, keep=args.keep,
                 min_score=args.min_score, slots=slot_files(args.slot), cap=args.cap, seed=args.seed,
                 config_file=args.config, overrides=args.set, overwrite=args.overwrite, beam_args=beam_args)


def slot_files(given: list[str]) -> dict[str, str]:
    """``altcap synth --slot NAME=FILE`` arguments as {name: file}."""
    slots = {}
    for each in given:
        name, sep, path = each.partition("=")
        if not (sep and name and path):
            raise ConfigError(f"--slot {each}: give NAME=FILE, e.g. --slot class=classes.txt")
        slots[name] = path
    return slots


def print_summary(stats: dict) -> None:
    print(f"\n{'stage':<12} {'in':>9} {'passed':>9} {'rejected':>9}  top reasons")
    for entry in stats["funnel"]:
        reasons = ", ".join(f"{r} {n}" for r, n in list(entry["reasons"].items())[:4])
        print(f"{entry['stage']:<12} {entry['in']:>9} {entry['passed']:>9} {entry['rejected']:>9}"
              f"  {reasons}")
    out = stats["output"]
    if retry := stats.get("retry"):
        print(f"\nretried {retry['retried']} records that had failed for a transient reason: "
              f"{retry['recovered']} recovered, {retry['failed_again']} failed again"
              + (f"; {retry['refetched']} dropped by a whole-run cut fetched again to judge afresh"
                 if retry["refetched"] else ""))
    print(f"\n{stats['samples']} samples in {stats['shards']} shard(s): {out}/shards/")
    print(f"{stats['rejects']} rejects with stage and reason: {out}/rejects/")
    if "tokens" in stats:
        print(f"image codes and text ids for the trainer: {out}/tokens/ (look: altcap tokens show {out})")
    print(f"report for a person: {out}/report.html")
    print(f"funnel and check: {out}/stats.json ({'ok' if stats['check']['ok'] else 'FAILED'}, "
          f"{stats['timings']['wall_s']:.1f} s)")


def score_config(args) -> Config:
    """``altcap score``'s config: the given one with CLIP on."""
    return load_config(args.config, ["clip.enabled=true", *args.set])


def dry_run_job(args, beam_args: list[str]):
    """The Dataflow job of ``altcap run``, ``score`` or ``tokenize`` when ``--dry_run=True`` asks for its
    translation only (None otherwise): the inputs and models are checked, nothing is written."""
    from pipeline.dry_run import dry_run, translate
    from pipeline.run import pipeline_options, planned_command
    from pipeline.score import planned_score
    from pipeline.tokenize import planned_tokenize

    options = pipeline_options(beam_args)
    if not dry_run(options):
        return None
    config = load_config(args.config, args.set)
    if args.command == "tokenize":
        return translate(planned_tokenize(args.output, config, options, claim=False))
    if args.command == "score":
        return translate(planned_score(args.output, score_config(args), options, claim=False))
    pipeline, _, _ = planned_command(args, options, claim=False)
    return translate(pipeline)


def main(argv: list[str] | None = None) -> int:
    args, beam_args = parser().parse_known_args(argv)
    tools = {"text": run_text, "kb": run_kb, "hypernymize": run_hypernymize,  # no pipeline: no Beam options
             "tokenizer": run_tokenizer, "tokens": run_tokens, "train": run_train, "sample": run_sample, "mix": run_mix,
             "phash": run_phash, "stats": run_stats, "report": run_report, "ls": run_ls, "inspect": run_inspect,
             "review": run_review}
    if args.command in tools:
        setup_logging(False)
        if beam_args:
            parser().error(f"unrecognized arguments: {' '.join(beam_args)}")
        try:
            return tools[args.command](args)
        except _user_errors() as err:
            print(f"altcap: error: {err}", file=sys.stderr)
            return 2
    if args.command == "config":
        print(Config().to_yaml(), end="")
        return 0
    setup_logging(args.verbose)
    from pipeline.funnel import AccountingError

    try:
        if beam_args and not beam_args[0].startswith("--"):
            raise ConfigError(f"unexpected argument {beam_args[0]!r}")
        if args.command == "run":
            check_run_arguments(args)
        if args.command in ("run", "score", "tokenize") and (job := dry_run_job(args, beam_args)):
            print(f"dry run: the DataflowRunner translated job {job.proto.name} "
                  f"({len(job.proto_pipeline.components.transforms)} transforms); nothing was submitted or written")
            return 0
        if args.command == "tokenize":
            from pipeline.tokenize import tokenize

            found = tokenize(args.output, load_config(args.config, args.set), beam_args=beam_args)
            print(f"{found['shards_written']} shard(s) tokenized, {found['shards_skipped']} already done; "
                  f"{found['samples']} samples, {found['captions_truncated']} captions cut to fit, "
                  f"{found['samples_failed']} failed: {args.output}/tokens/")
            return 0
        if args.command == "score":
            from pipeline.score import score

            found = score(args.output, score_config(args), beam_args=beam_args)
            print(f"{found['shards_scored']} shard(s) scored, {found['shards_skipped']} already done")
            stats = found["stats"]
        elif args.command == "synth":
            stats = run_synth(args, beam_args)
        elif args.command == "demo":
            from pipeline.demo import run_demo

            stats = run_demo(args.output, beam_args=beam_args)
        elif args.retry_failed:
            from pipeline.run import retry_config, run

            items, config = retry_config(args.retry_failed, args.config, args.set)
            stats = run([], args.retry_failed, config, beam_args=beam_args, items=items, retry_failed=True)
        else:
            from pipeline.run import run

            config = load_config(args.config, args.set)
            stats = run(args.input, args.output, config, beam_args=beam_args,
                        input_format=args.input_format, overwrite=args.overwrite)
    except _user_errors() as err:
        print(f"altcap: error: {err}", file=sys.stderr)
        return 2
    except AccountingError as err:
        print(f"altcap: accounting check FAILED: {err}", file=sys.stderr)
        return 3
    except RuntimeError as failure:
        if (message := worker_os_error(failure)) is None:
            raise
        print(f"altcap: error: {message}", file=sys.stderr)
        return 2
    print_summary(stats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
