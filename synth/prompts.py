"""Prompts for `altcap synth`: plain lines, and templates expanded over slot values.

Templates widen classes over settings and styles ("Fake it till you make it", Sariyildiz CVPR 2023; He ICLR 2023).
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import os
import random
import string

import yaml

_YAML_KEYS = ("templates", "slots", "prompts", "cap", "seed")
_BRACE_HINT = "write a literal brace as {{ or }}"


class PromptError(ValueError):
    """A prompt file, slot file or argument that cannot give prompts; the message says which and why."""


@dataclasses.dataclass(frozen=True)
class Prompt:
    """One prompt for a generator, with the template and slot values it came from (none for a plain prompt)."""

    text: str
    template: str | None = None
    slots: tuple[tuple[str, str], ...] = ()

    @property
    def slot_values(self) -> dict[str, str]:
        return dict(self.slots)

    @property
    def label(self) -> str | None:
        """The class the image should show, which the zero-shot check looks for."""
        return self.slot_values.get("class")

    @property
    def prompt_id(self) -> str:
        """The same on any machine and Python: sha256 of canonical JSON, never hash()."""
        key = json.dumps([self.text, self.template, sorted(self.slots)], separators=(",", ":"))
        return hashlib.sha256(key.encode("ascii")).hexdigest()[:16]


def load_prompts(path, *, slots: dict[str, str] | None = None, cap: int | None = None,
                 seed: int | None = None) -> list[Prompt]:
    """Plain prompts in file order, then each template over every combination of its slot values.

    `slots` maps a slot name to a file of values (one a line); it overrides a YAML file's own. `cap` keeps a
    sample of that many, drawn with `seed` and returned in expansion order; `cap`/`seed` override the YAML's.
    """
    path = os.fspath(path)
    if path.lower().endswith((".yaml", ".yml")):
        lines, values, file_cap, file_seed = _read_yaml(path)
    else:
        lines, values, file_cap, file_seed = _read_lines(path, "prompt file"), {}, None, None
    for name, slot_path in (slots or {}).items():
        values[name] = _read_slot_file(os.fspath(slot_path), name)
    prompts = _expand(lines, values, path)
    if not prompts:
        raise PromptError(f"prompt file {path} has no prompts")
    return _sample(prompts, file_cap if cap is None else cap, (file_seed or 0) if seed is None else seed)


def _read_text(path: str, what: str) -> str:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        raise PromptError(f"{what} not found: {path}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise PromptError(f"cannot read {what} {path}: {err}") from None


def _read_lines(path: str, what: str) -> list[str]:
    """Stripped lines, blank lines and `#` comments skipped, each kept once (the first)."""
    lines = map(str.strip, _read_text(path, what).splitlines())
    return list(dict.fromkeys(line for line in lines if line and not line.startswith("#")))


def _read_slot_file(path: str, name: str) -> list[str]:
    values = _read_lines(path, f"slot file for {name!r}")
    if not values:
        raise PromptError(f"slot file {path} for {name!r} has no values")
    return values


def _read_yaml(path: str) -> tuple[list[str], dict[str, list[str]], object, object]:
    """templates:, prompts:, slots: (name -> list of values, or a values file beside the YAML), cap:, seed:."""
    shape = f"prompt file {path} must be a YAML mapping with keys among {', '.join(_YAML_KEYS)}"
    try:
        data = yaml.safe_load(_read_text(path, "prompt file"))
    except yaml.YAMLError as err:
        raise PromptError(f"cannot read prompt file {path}: {err}") from None
    data = {} if data is None else data
    if not isinstance(data, dict) or not set(data) <= set(_YAML_KEYS):
        raise PromptError(shape)
    lines = _text_list(data.get("prompts") or [], f"prompts: in {path}")
    lines += _text_list(data.get("templates") or [], f"templates: in {path}")
    slots = data.get("slots") or {}
    if not isinstance(slots, dict):
        raise PromptError(f"slots: in {path} must map each slot name to a list of values or a values file")
    values = {}
    for name, spec in slots.items():
        if isinstance(spec, str):
            values[str(name)] = _read_slot_file(os.path.join(os.path.dirname(path), spec), str(name))
        else:
            values[str(name)] = _text_list(spec, f"slot {name!r} in {path}")
            if not values[str(name)]:
                raise PromptError(f"slot {name!r} in {path} has no values")
    return list(dict.fromkeys(lines)), values, data.get("cap"), data.get("seed")


def _text_list(items, where: str) -> list[str]:
    """A YAML list of text (numbers allowed), stripped, blanks dropped, each kept once."""
    if not isinstance(items, list) or any(isinstance(item, bool) or not isinstance(item, (str, int, float))
                                          for item in items):
        raise PromptError(f"{where} must be a list of text (quote values such as yes/no), got {items!r}")
    return list(dict.fromkeys(text for text in (str(item).strip() for item in items) if text))


def _pieces(line: str, where: str) -> list[tuple[str, str | None]]:
    """(literal text, slot name or None) pairs, by str.format's rules; any field but `{name}` is refused."""
    try:
        parsed = list(string.Formatter().parse(line))
    except ValueError as err:
        raise PromptError(f"bad braces in {line!r} in {where}: {err}; {_BRACE_HINT}") from None
    for _, name, spec, conversion in parsed:
        if name is not None and (not name.isidentifier() or spec or conversion):
            field = name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "")
            raise PromptError(f"{{{field}}} in {line!r} in {where} is not a {{name}} slot; {_BRACE_HINT}")
    return [(literal, name) for literal, name, _, _ in parsed]


def _expand(lines: list[str], values: dict[str, list[str]], where: str) -> list[Prompt]:
    plain, expanded = [], []
    for line in lines:
        pieces = _pieces(line, where)
        names = list(dict.fromkeys(name for _, name in pieces if name is not None))
        if not names:
            plain.append(Prompt("".join(literal for literal, _ in pieces)))
            continue
        for name in names:
            if name not in values:
                raise PromptError(f"template {line!r} in {where} uses slot {name!r}, which has no values: give a "
                                  f"file of them with --slot {name}=FILE (slots={{{name!r}: FILE}}), or list them "
                                  f"under slots: in a YAML prompt file")
        for combo in itertools.product(*(values[name] for name in names)):
            chosen = dict(zip(names, combo))
            text = "".join(literal + (chosen[name] if name else "") for literal, name in pieces)
            expanded.append(Prompt(text, line, tuple(chosen.items())))
    return plain + expanded


def _sample(prompts: list[Prompt], cap, seed) -> list[Prompt]:
    """All prompts, or `cap` of them drawn with random.Random(seed), kept in expansion order."""
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise PromptError(f"seed must be a whole number, got {seed!r}")
    if cap is None:
        return prompts
    if isinstance(cap, bool) or not isinstance(cap, int) or cap < 1:
        raise PromptError(f"cap must be a whole number of at least 1, got {cap!r}")
    if len(prompts) <= cap:
        return prompts
    return [prompts[index] for index in sorted(random.Random(seed).sample(range(len(prompts)), cap))]
