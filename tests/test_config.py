"""Configuration: defaults, YAML, --set overrides and clear errors."""

from __future__ import annotations

import pytest

from pipeline.config import Config, ConfigError, config_from_dict, load_config


def test_defaults_follow_conceptual_captions_and_img2dataset():
    config = Config()
    assert config.image.formats == ["jpeg"]
    assert config.image.min_side == 401 and config.image.max_aspect_ratio == 2.0
    assert config.resize.image_size == 256 and config.resize.encode_format == "jpg"
    assert config.download.allow_private_addresses is False
    assert "noai" in config.download.disallowed_header_directives


def test_yaml_then_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("image:\n  min_side: 100\n  formats: [jpeg, png]\nresize:\n  image_size: 64\n")
    config = load_config(str(path), ["resize.image_size=128", "image.formats=jpeg,webp",
                                     "download.allow_private_addresses=true"])
    assert config.image.min_side == 100
    assert config.resize.image_size == 128
    assert config.image.formats == ["jpeg", "webp"]
    assert config.download.allow_private_addresses is True
    assert config_from_dict(config.to_dict()) == config


@pytest.mark.parametrize("override, message", [
    ("image.min_sides=3", "unknown key image.min_sides; did you mean image.min_side?"),
    ("imag.min_side=3", "unknown section 'imag'; did you mean image.min_side?"),
    ("download.max_nsfw=0.3", "unknown key download.max_nsfw; did you mean safety.max_nsfw?"),
    ("clip.frobnicate=1", r"unknown key clip.frobnicate \(known: "),
    ("image.min_side=big", "expected a whole number"),
    ("resize.resize_mode=stretch", "not one of"),
    ("download.threads=0", "download.threads must be > 0"),
    ("nodot=1", "expected section.key=value"),
])
def test_bad_settings_say_what_is_wrong(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, [override])


def test_unreadable_or_invalid_config_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(str(tmp_path / "missing.yaml"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("image: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(str(bad))
