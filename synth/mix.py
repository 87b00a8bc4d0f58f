"""``altcap mix``: a manifest that mixes output folders' token files by weight (e.g. 80% real and 20%
synthetic rows), for the bundled trainer (``data: [mix.json]``, trainer/data.py ``MixedStream``).

    altcap mix real/=0.8 synth-out/=0.2 --output mix.json

The manifest (JSON)::

    {"version": 1,
     "sources": [{"folder": absolute path, "weight": share of the rows (the weights sum to 1),
                  "files": token files, "samples": their rows, "tokens_sha": the files' identity}, ...],
     "tokenizers": the tokens/tokenizers.json all the folders share}

A folder's identity is a sha256 over each token file's name, size and first and last row: cheap to
check at every start of a training run (no file is read whole), and it changes when files are added,
removed, cut (a review, a whole-run pass) or made again (a new synth run of the same prompts has the
same keys and sizes, but other codes). A folder changed since is refused; a change inside a file that
keeps its size and its first and last rows would go unseen.
"""

from __future__ import annotations

import glob
import hashlib
import json
import math
import os
import sys

import numpy as np

from dataset.layout import TOKENS

VERSION = 1


class MixError(ValueError):
    """A mix that cannot be made or trained on; the message names the folder, weight or manifest."""


def is_manifest(entry: str) -> bool:
    """Whether a trainer ``data`` entry names a mix manifest (a .json file) rather than an output folder."""
    return entry.endswith(".json")


def parse_source(item: str) -> tuple[str, float]:
    """``FOLDER=WEIGHT``, or ``FOLDER`` alone for weight 1."""
    folder, sep, weight = item.rpartition("=")
    if not sep:
        return item, 1.0
    try:
        return folder, float(weight)
    except ValueError:
        raise MixError(f"{item}: the weight after = must be a number") from None


def token_identity(folder: str) -> dict:
    """How many token files and rows the folder has, and their identity (the module's docstring)."""
    paths = sorted(glob.glob(os.path.join(folder, TOKENS.folder, "*.npy")))  # the files TokenStream reads
    digest, samples = hashlib.sha256(), 0
    for path in paths:
        try:
            rows = np.load(path, mmap_mode="r")
        except ValueError as err:  # not a structured array without pickle
            raise MixError(f"{path} is not a token file ({err})") from None
        samples += len(rows)
        digest.update(f"{os.path.basename(path)} {os.path.getsize(path)} {len(rows)}\n".encode())
        digest.update(rows[:1].tobytes() + rows[-1:].tobytes())
    return {"files": len(paths), "samples": samples, "tokens_sha": digest.hexdigest()}


def build(sources: list[tuple[str, float]]) -> dict:
    """The manifest of (folder, weight) pairs: folders with tokens of the same tokenizers, weights above 0."""
    from trainer.data import token_folders_spec  # tokens.manifest loads torch: only when a mix is made

    if not sources:
        raise MixError("name at least one output folder")
    folders = []
    for folder, weight in sources:
        if not os.path.isdir(folder):
            raise MixError(f"{folder}: no such folder")
        if not (math.isfinite(weight) and weight > 0):
            raise MixError(f"{folder}={weight:g}: a weight must be a number above 0")
        if os.path.abspath(folder) in folders:
            raise MixError(f"{folder} is named twice")
        folders.append(os.path.abspath(folder))
    spec = token_folders_spec(folders)  # a folder without tokenizers.json, or of other tokenizers: refused
    total = sum(weight for _, weight in sources)
    entries = []
    for folder, (_, weight) in zip(folders, sources):
        identity = token_identity(folder)
        if not identity["samples"]:
            raise MixError(f"{folder} has no token rows (tokens/*.npy): altcap tokenize {folder} makes them")
        entries.append({"folder": folder, "weight": weight / total, **identity})
    return {"version": VERSION, "sources": entries, "tokenizers": spec}


def write(manifest: dict, path: str) -> None:
    """Write the manifest whole or not at all."""
    fresh = path + ".new"
    with open(fresh, "w", encoding="utf-8") as handle:
        json.dump(manifest, handle, indent=1)
    os.replace(fresh, path)


def read(path: str) -> dict:
    """The manifest at ``path``, checked against its folders as they are now: each still holds the
    token files it was written with, made by the tokenizers it names."""
    from tokens.manifest import TokenizerMismatch, differences
    from trainer.data import token_folders_spec

    try:
        with open(path, encoding="utf-8") as handle:
            manifest = json.load(handle)
    except FileNotFoundError:
        raise MixError(f"{path}: no such mix manifest (altcap mix writes one)") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise MixError(f"{path}: not a mix manifest ({err})") from None
    if not well_formed(manifest):
        raise MixError(f"{path}: not a version {VERSION} mix manifest (altcap mix writes one)")
    for source in manifest["sources"]:
        if not os.path.isdir(source["folder"]):
            raise MixError(f"{path}: {source['folder']} is gone")
    changed = differences(manifest["tokenizers"], token_folders_spec([s["folder"] for s in manifest["sources"]]))
    if changed:
        raise TokenizerMismatch(f"{path}: its folders now hold tokens of other tokenizers ({'; '.join(changed)}): "
                                "run altcap mix again")
    for source in manifest["sources"]:
        now = token_identity(source["folder"])
        if now["tokens_sha"] != source["tokens_sha"]:
            raise MixError(f"{source['folder']} changed since {path} was written ({source['files']} token files, "
                           f"{source['samples']} samples then; {now['files']}, {now['samples']} now): "
                           "run altcap mix again")
    return manifest


def well_formed(manifest) -> bool:
    """The fields the trainer reads, of their types: a hand-edited file fails here, not in the middle of a run."""
    if not isinstance(manifest, dict) or manifest.get("version") != VERSION:
        return False
    sources = manifest.get("sources")
    return isinstance(manifest.get("tokenizers"), dict) and isinstance(sources, list) and bool(sources) and \
        all(isinstance(source, dict) and well_formed_source(source) for source in sources)


def well_formed_source(source: dict) -> bool:
    weight = source.get("weight")
    return isinstance(source.get("folder"), str) and isinstance(source.get("tokens_sha"), str) and \
        isinstance(source.get("files"), int) and isinstance(source.get("samples"), int) and \
        isinstance(weight, (int, float)) and math.isfinite(weight) and weight > 0


def mix_arguments(parser) -> None:
    parser.add_argument("sources", nargs="+", metavar="FOLDER[=WEIGHT]",
                        help="an output folder with tokens/ and its weight (default 1); weights are normalised: "
                             "real/=4 synth/=1 is 80%% real rows")
    parser.add_argument("--output", required=True, metavar="FILE.json",
                        help="where to write the manifest; train on it with --set data=FILE.json")


def run_mix(args) -> int:
    """Write the manifest and print each source's share; a user error ends in one line and exit status 2."""
    from tokens.manifest import TokenizerMismatch

    try:
        if not is_manifest(args.output):
            raise MixError(f"--output {args.output}: the name must end in .json (how the trainer tells a manifest "
                           "from a folder)")
        manifest = build([parse_source(item) for item in args.sources])
        write(manifest, args.output)
    except (MixError, TokenizerMismatch, OSError) as err:
        print(f"altcap mix: error: {err}", file=sys.stderr)
        return 2
    total = sum(source["samples"] for source in manifest["sources"])
    for source in manifest["sources"]:
        often = source["weight"] * total / source["samples"]
        print(f"{source['weight']:6.1%} of the rows from {source['samples']:,} samples ({often:.2f}x as often as in "
              f"a plain list): {source['folder']}")
    print(f"wrote {args.output}: train on it with --set data={args.output}")
    return 0
