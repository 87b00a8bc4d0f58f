"""synth/prompts.py: plain prompts and templates from real files, their ids, the capped sample, and each error."""

import hashlib

import pytest

from synth.prompts import Prompt, PromptError, load_prompts


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def texts(prompts):
    return [prompt.text for prompt in prompts]


def test_plain_list_skips_comments_blanks_and_duplicates(tmp_path):
    path = write(tmp_path / "prompts.txt", "# cars\n  a red car  \n\n\ta blue bus\n# again\na red car\n   \n")
    prompts = load_prompts(path)
    assert texts(prompts) == ["a red car", "a blue bus"]
    assert all(p.template is None and p.slots == () and p.slot_values == {} and p.label is None for p in prompts)


def test_templates_take_slot_files_and_come_after_plain_prompts(tmp_path):
    path = write(tmp_path / "prompts.txt", "A {class} {setting}\na plain one\na {class} in the style of {style}\n")
    slots = {"class": write(tmp_path / "classes.txt", "dog\n# not a class\ncat\ndog\n"),
             "setting": write(tmp_path / "settings.txt", "on a beach\nin snow\n"),
             "style": str(write(tmp_path / "styles.txt", "Monet\n"))}
    prompts = load_prompts(path, slots=slots)
    assert texts(prompts) == ["a plain one", "A dog on a beach", "A dog in snow", "A cat on a beach", "A cat in snow",
                              "a dog in the style of Monet", "a cat in the style of Monet"]
    snow_cat = prompts[4]
    assert snow_cat.template == "A {class} {setting}"
    assert snow_cat.slots == (("class", "cat"), ("setting", "in snow"))
    assert snow_cat.slot_values == {"class": "cat", "setting": "in snow"}
    assert snow_cat.label == "cat"
    assert prompts[0].label is None


def test_yaml_with_inline_lists_relative_files_and_plain_prompts(tmp_path, monkeypatch):
    write(tmp_path / "conf" / "lists" / "classes.txt", "truck\nvan\n")
    path = write(tmp_path / "conf" / "prompts.yaml", """
prompts: ["a road at night"]
templates:
  - "a {class} {setting}"
  - "a {class}-like car"
slots:
  class: lists/classes.txt
  setting: ["in fog", "at dawn"]
""")
    monkeypatch.chdir(tmp_path)  # slot files are found beside the YAML, not in the working folder
    prompts = load_prompts(path)
    assert texts(prompts) == ["a road at night", "a truck in fog", "a truck at dawn", "a van in fog", "a van at dawn",
                              "a truck-like car", "a van-like car"]
    assert prompts[-1].label == "van" and prompts[-1].template == "a {class}-like car"


def test_slots_argument_overrides_the_yaml_slot(tmp_path):
    path = write(tmp_path / "p.yml", "templates: ['a {class}']\nslots: {class: [dog, cat]}\n")
    assert texts(load_prompts(path, slots={"class": write(tmp_path / "c.txt", "owl\n")})) == ["a owl"]


def test_prompt_id_is_a_fixed_function_of_text_template_and_slots(tmp_path):
    # Expected ids, from the documented formula: the first 16 hex digits of the sha256 of the compact JSON
    # [text, template, [[slot, value], ...] sorted by slot], e.g. '["a red car",null,[]]'.
    def formula(key):
        return hashlib.sha256(key.encode()).hexdigest()[:16]

    assert formula('["A dog on a beach","A {class} {setting}",[["class","dog"],["setting","on a beach"]]]') \
        == "c948b62ab54fb7ab"
    assert formula('["a red car",null,[]]') == "ba1ebe301590a0bf"

    path = write(tmp_path / "p.txt", "a red car\nA {class} {setting}\n")
    slots = {"class": write(tmp_path / "c.txt", "dog\n"), "setting": write(tmp_path / "s.txt", "on a beach\n")}
    plain, templated = load_prompts(path, slots=slots)
    assert plain.prompt_id == "ba1ebe301590a0bf"
    assert templated.prompt_id == "c948b62ab54fb7ab"


def test_same_text_from_different_templates_or_slots_gets_different_ids(tmp_path):
    path = write(tmp_path / "p.yaml", """
prompts: ["a dog photo"]
templates: ["a {class}", "a dog {kind}", "a {kind} {class}"]
slots: {class: ["dog photo"], kind: ["photo"]}
""")
    a = load_prompts(path)
    path_b = write(tmp_path / "q.yaml", "templates: ['a {kind} {class}']\nslots: {class: ['photo'], kind: ['dog']}\n")
    b = load_prompts(path_b)
    assert texts(a) == ["a dog photo", "a dog photo", "a dog photo", "a photo dog photo"]
    assert texts(b) == ["a dog photo"]
    ids = [p.prompt_id for p in a[:3] + b]
    assert len(set(ids)) == 4
    assert Prompt("a dog photo").prompt_id == a[0].prompt_id


def test_a_slot_used_twice_takes_one_value(tmp_path):
    path = write(tmp_path / "p.txt", "a {class} next to another {class}\n")
    prompts = load_prompts(path, slots={"class": write(tmp_path / "c.txt", "cat\nowl\n")})
    assert texts(prompts) == ["a cat next to another cat", "a owl next to another owl"]
    assert prompts[0].slots == (("class", "cat"),)


def test_doubled_braces_are_literal_and_slot_values_are_not_reparsed(tmp_path):
    path = write(tmp_path / "p.txt", "a {{curly}} {class}\nset {{x}} and }}\n")
    prompts = load_prompts(path, slots={"class": write(tmp_path / "c.txt", "dog\n{odd}\n")})
    assert texts(prompts) == ["set {x} and }", "a {curly} dog", "a {curly} {odd}"]
    assert prompts[0].template is None and prompts[1].template == "a {{curly}} {class}"


@pytest.fixture
def grid(tmp_path):
    """Three classes by four settings: twelve prompts in a known order."""
    path = write(tmp_path / "grid.txt", "a {class} {setting}\n")
    slots = {"class": write(tmp_path / "c.txt", "cat\ndog\nowl\n"),
             "setting": write(tmp_path / "s.txt", "1\n2\n3\n4\n")}
    return path, slots


def test_cap_keeps_a_seeded_sample_in_expansion_order(grid):
    path, slots = grid
    everything = texts(load_prompts(path, slots=slots))
    assert len(everything) == 12
    first = texts(load_prompts(path, slots=slots, cap=5, seed=1))
    assert first == texts(load_prompts(path, slots=slots, cap=5, seed=1))
    assert len(first) == 5
    positions = [everything.index(text) for text in first]
    assert positions == sorted(positions)
    assert texts(load_prompts(path, slots=slots, cap=5, seed=2)) != first
    # pinned, so another machine or Python must draw the same: sorted(random.Random(0).sample(range(12), 5))
    assert texts(load_prompts(path, slots=slots, cap=5)) == ["a cat 1", "a dog 1", "a dog 3", "a dog 4", "a owl 4"]
    assert texts(load_prompts(path, slots=slots, cap=12)) == everything
    assert texts(load_prompts(path, slots=slots, cap=50)) == everything


def test_yaml_cap_and_seed_apply_unless_arguments_override(tmp_path):
    path = write(tmp_path / "p.yaml", "templates: ['{class} {n}']\nslots: {class: [a, b, c], n: [1, 2, 3, 4]}\n"
                                      "cap: 5\nseed: 1\n")
    from_file = texts(load_prompts(path))
    assert len(from_file) == 5
    assert from_file == texts(load_prompts(path, cap=5, seed=1))
    assert from_file != texts(load_prompts(path, seed=2))
    assert len(load_prompts(path, cap=3)) == 3


def error_of(tmp_path, name, text, **kwargs):
    path = write(tmp_path / name, text)
    with pytest.raises(PromptError) as caught:
        load_prompts(path, **kwargs)
    assert isinstance(caught.value, ValueError)
    return str(caught.value)


def test_missing_files(tmp_path):
    with pytest.raises(PromptError, match=r"prompt file not found: .*nope\.txt"):
        load_prompts(tmp_path / "nope.txt")
    with pytest.raises(PromptError, match=r"prompt file not found: .*nope\.yaml"):
        load_prompts(tmp_path / "nope.yaml")
    message = error_of(tmp_path, "p.txt", "a {class}\n", slots={"class": tmp_path / "gone.txt"})
    assert message.startswith("slot file for 'class' not found: ") and message.endswith("gone.txt")
    message = error_of(tmp_path, "p.yaml", "templates: ['a {class}']\nslots: {class: gone.txt}\n")
    assert message.startswith("slot file for 'class' not found: ") and message.endswith("gone.txt")


def test_template_slot_without_values_names_it_and_says_how_to_give_it(tmp_path):
    message = error_of(tmp_path, "p.txt", "A {class} {setting}\n", slots={"class": write(tmp_path / "c.txt", "dog\n")})
    assert "template 'A {class} {setting}'" in message
    assert "slot 'setting', which has no values" in message
    assert "--slot setting=FILE" in message and "slots: in a YAML prompt file" in message


def test_empty_slots(tmp_path):
    empty = write(tmp_path / "c.txt", "# nothing yet\n\n")
    message = error_of(tmp_path, "p.txt", "a {class}\n", slots={"class": empty})
    assert message == f"slot file {empty} for 'class' has no values"
    message = error_of(tmp_path, "p.yaml", "templates: ['a {class}']\nslots: {class: []}\n")
    assert message.startswith("slot 'class' in ") and message.endswith("p.yaml has no values")


@pytest.mark.parametrize(("line", "expected"), [
    ("a {class", "bad braces in 'a {class' in"),
    ("a class}", "bad braces in 'a class}' in"),
    ("a {} car", "{} in 'a {} car' in"),
    ("a {0} car", "{0} in 'a {0} car' in"),
    ("a {car.wheel}", "{car.wheel} in 'a {car.wheel}' in"),
    ("a {car!r}", "{car!r} in 'a {car!r}' in"),
    ("a {car:>9}", "{car:>9} in 'a {car:>9}' in"),
])
def test_braces_that_are_not_a_slot(tmp_path, line, expected):
    message = error_of(tmp_path, "p.txt", f"fine\n{line}\n")
    assert expected in message
    assert message.endswith("write a literal brace as {{ or }}")
    if not message.startswith("bad braces"):
        assert "is not a {name} slot" in message


def test_a_file_without_prompts(tmp_path):
    assert error_of(tmp_path, "p.txt", "# only a comment\n\n").endswith("p.txt has no prompts")
    assert error_of(tmp_path, "p.yaml", "").endswith("p.yaml has no prompts")
    assert error_of(tmp_path, "q.yaml", "templates: []\n").endswith("q.yaml has no prompts")


@pytest.mark.parametrize(("text", "expected"), [
    ("- a dog\n- a cat\n", "must be a YAML mapping with keys among templates, slots, prompts, cap, seed"),
    ("templates: ['a {class}']\nclasses: [dog]\n", "must be a YAML mapping with keys among"),
    ("templates: 'a {class}'\n", "templates: in "),
    ("prompts: [{a: 1}]\n", "prompts: in "),
    ("templates: ['a {class}']\nslots: [dog]\n", "slots: in "),
    ("templates: ['a {class}']\nslots: {class: {dog: 1}}\n", "slot 'class' in "),
    ("templates: ['a {class}']\nslots: {class: [yes]}\n", "quote values such as yes/no"),
    ("templates: [a\n", "cannot read prompt file"),
])
def test_yaml_of_the_wrong_shape(tmp_path, text, expected):
    assert expected in error_of(tmp_path, "p.yaml", text)


def test_cap_below_one_and_a_bad_seed(tmp_path):
    path = write(tmp_path / "p.txt", "a\nb\n")
    for cap in (0, -3):
        with pytest.raises(PromptError, match=rf"^cap must be a whole number of at least 1, got {cap}$"):
            load_prompts(path, cap=cap)
    assert error_of(tmp_path, "p.yaml", "prompts: [a]\ncap: 0\n") == "cap must be a whole number of at least 1, got 0"
    assert error_of(tmp_path, "q.yaml", "prompts: [a]\nseed: x\n") == "seed must be a whole number, got 'x'"
