"""clean_caption, is_url_only and drop_phrase on real alt-texts: the Conceptual Captions paper's
examples and boilerplate, HTML entities, mojibake, URLs and e-mail addresses, and ordinary
captions that mention a picture and must stay as they are."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from filters.english import letter_tokens
from filters.text_clean import clean_caption, clean_with_tokens, drop_phrase, is_url_only

DATA = Path(__file__).resolve().parent / "data" / "text"
CC_EXAMPLES = ("captions", "hypernymization", "cc_paper_examples.json")
PARQUET = ("img2dataset_tests", "tests", "test_files", "test_10000.parquet")
STOCK_IMAGE = " - Stock Image"
CAPTION = "Side view of a British Airways Airbus A319 aircraft on approach to land with landing gear down"


@pytest.fixture
def cc_paper(realdata):
    return json.loads(realdata(*CC_EXAMPLES).read_text(encoding="utf-8"))


@pytest.fixture
def parquet_texts(realdata):
    import pyarrow.parquet as pq

    return pq.read_table(realdata(*PARQUET), columns=["TEXT"]).column("TEXT").to_pylist()


def lines(name: str) -> list[str]:
    return (DATA / name).read_text(encoding="utf-8").splitlines()


# --- the Conceptual Captions paper (Sharma et al. 2018) -------------------------------------------

def test_table1_stock_image_suffix_is_cropped(cc_paper):
    stock = [e["alt_text"] for e in cc_paper["examples"] if e["alt_text"].endswith(STOCK_IMAGE)]
    assert len(stock) == 2  # the note in the file: the 2nd and 3rd Table-1 alt-texts
    for alt in stock:
        cleaned = clean_caption(alt)
        assert cleaned == alt[:-len(STOCK_IMAGE)]
        assert "stock" not in cleaned.lower()
        assert drop_phrase(cleaned) is None


def test_paper_alt_texts_and_captions_without_boilerplate_are_kept(cc_paper):
    texts = [e["alt_text"] for e in cc_paper["examples"] if not e["alt_text"].endswith(STOCK_IMAGE)]
    texts += [e["conceptual_caption"] for e in cc_paper["examples"]]
    texts.append(cc_paper["figure3_non_hypernymized_failure_example"]["alt_text_groundtruth"])
    assert len(texts) == 9
    for text in texts:
        assert clean_caption(text) == text
        assert drop_phrase(text) is None


@pytest.mark.parametrize("template", [
    "{caption} - {phrase}", "{caption} | {phrase}", "{caption}, {phrase}", "{caption} {phrase}",
    "{phrase} - {caption}", "{phrase}: {caption}", "{phrase} {caption}",
    "{caption} - {Phrase}", "{Phrase}: {caption}", "{PHRASE} - {caption}",
])
def test_section3_boilerplate_is_cropped_before_and_after(cc_paper, template):
    """Section 3: "click to enlarge picture" and "stock photo" are cropped, in any case and with
    or without a separator."""
    phrases = cc_paper["boilerplate_examples_from_section3"]["cropped_prefix_suffix"]
    assert phrases == ["click to enlarge picture", "stock photo"]
    for phrase in phrases:
        text = template.format(caption=CAPTION, phrase=phrase, Phrase=phrase.capitalize(), PHRASE=phrase.upper())
        assert clean_caption(text) == CAPTION, text


@pytest.mark.parametrize("phrase", ["click to enlarge picture", "Click to enlarge picture", "stock photo",
                                    "Stock Photo", "Stock Photo - click to enlarge", "Royalty Free Stock Photos"])
def test_boilerplate_alone_leaves_nothing(phrase):
    assert clean_caption(phrase) == ""


@pytest.mark.parametrize("where", ["begins", "ends"])
def test_section3_drop_phrases_are_found_at_either_end(cc_paper, where):
    """Section 3: candidates that begin or end with "embedded image permalink" or "profile photo"
    are dropped, not cropped: cleaning keeps them and drop_phrase names the phrase."""
    phrases = cc_paper["boilerplate_examples_from_section3"]["drop_if_begins_or_ends_with"]
    assert phrases == ["embedded image permalink", "profile photo"]
    for phrase in phrases:
        for variant in (phrase, phrase.capitalize(), phrase.title()):
            text = f"{variant} {CAPTION}" if where == "begins" else f"{CAPTION} {variant}"
            cleaned = clean_caption(text)
            assert cleaned == text
            assert drop_phrase(cleaned) == variant
            assert drop_phrase(cleaned, letter_tokens(cleaned.lower())) == variant
    assert drop_phrase(CAPTION) is None


@pytest.mark.parametrize("text, phrase", [
    # real alt-texts: the labelled junk file and the img2dataset test parquet
    ("antonela223949's profile photo", "profile photo"),
    ("Frank Grillo Profile Photo", "Profile Photo"),
    ("Profile picture for Code 3 Video Productions", "Profile picture"),
    ("Embedded image permalink", "Embedded image permalink"),
    ("Image result for starfall", "Image result for"),
    ("Google Image Result for", "Google Image Result for"),
    ("Load image into Gallery viewer, Raw Amazonite in Quartz", "Load image into Gallery viewer"),
    ("gray and white seamless pattern vector image vector image", "vector image"),
    ("tooth crown orthodontics dental floss and electric brush vector illustration", "vector illustration"),
    ("2016 Hologram Kids Birthday Party Gift Bags pictures & photos", "pictures & photos"),
    ("25+ best ideas about Wood burning stoves on Pinterest", "on Pinterest"),
    ("4.83 out of 5 stars", "out of 5 stars"),
    ("Share on Facebook", "Share on"),
    ("Type the characters you see in this picture.", "Type the characters"),
    ("speed Png Icon", "Png Icon"),
])
def test_page_furniture_and_keyword_titles_are_drop_phrases(text, phrase):
    assert drop_phrase(clean_caption(text)) == phrase


def test_stock_site_suffixes_are_cropped_like_stock_photo():
    assert clean_caption("Orchid flower Royalty Free Stock Photography") == "Orchid flower"
    assert clean_caption("Tourist boats on the Douro river at Ribeira. Stock Photography") == \
        "Tourist boats on the Douro river at Ribeira"


# --- entities, Unicode, URLs, whitespace ----------------------------------------------------------

@pytest.mark.parametrize("raw, cleaned", [
    ("Tom &amp;amp; Jerry", "Tom & Jerry"),  # escaped twice: common on real pages
    ("Fish &amp; Chips", "Fish & Chips"),
    ("Oak-K-Dokey, Wood Cleaner &amp; Polish, 16 oz.", "Oak-K-Dokey, Wood Cleaner & Polish, 16 oz."),  # parquet row
    ("l&#39;amour", "l'amour"),
    ("Red barn &nbsp;in winter", "Red barn in winter"),
    ("A &quot;red&quot; barn", 'A "red" barn'),
    ("AT&T store", "AT&T store"),  # a bare ampersand is no entity
])
def test_html_entities_are_decoded(raw, cleaned):
    assert clean_caption(raw) == cleaned


YALE = ("<a href='http://nymetroparents.com/listing/Yale-New-Haven-Children-s-Hospital-'>Yale-New Haven "
        "Children's Hospital </a>Ribbon Cutting Ceremony.")
TRUONG = "Researcher holding two skulls of the never seen Truong Son muntjac (&lt;i&gt;Truong Son ... / &copy;: WWF-UK"


@pytest.mark.parametrize("raw, cleaned", [
    # parquet rows: a link whose address used to take the tag's text with it, and an escaped tag
    (YALE, "Yale-New Haven Children's Hospital Ribbon Cutting Ceremony."),
    (TRUONG, "Researcher holding two skulls of the never seen Truong Son muntjac (Truong Son ..."),
    ("In the video game <em>Portal 2</em>, players use portals to teleport themselves and objects to help solve "
     "puzzles.", "In the video game Portal 2, players use portals to teleport themselves and objects to help "
     "solve puzzles."),
    ("Ryde, Sydney, Australia<br /> Grave of Maria Ann Smith, better known as 'Granny' Smith. St Annes, Ryde.",
     "Ryde, Sydney, Australia Grave of Maria Ann Smith, better known as 'Granny' Smith. St Annes, Ryde."),
    ("Fred Perry Black Stewart Tartan Scarf<p>Black", "Fred Perry Black Stewart Tartan Scarf Black"),
    ("<!--020111101037766-->Hip Hop Flash Drive - 'Roland TR-808 - 16GB' [USB Memory Drive]",
     "Hip Hop Flash Drive - 'Roland TR-808 - 16GB' [USB Memory Drive]"),
    ("1:18 scale For LP610 Diecast Sports <font><b>Car</b></font> <font><b>Model</b></font> Simulated Alloy",
     "1:18 scale For LP610 Diecast Sports Car Model Simulated Alloy"),
    # written for these tests
    ("A <b class=\"x\">red</b> barn<br/>in winter", "A red barn in winter"),
    ("A red <I>barn</I> in <SPAN STYLE='color: red'>winter</SPAN>", "A red barn in winter"),
    ('A red barn <img src="barn.jpg" alt="barn"> in winter', "A red barn in winter"),
])
def test_html_tags_are_removed_and_their_text_kept(raw, cleaned):
    assert clean_caption(raw) == cleaned


@pytest.mark.parametrize("caption", [
    "triple high helix <3", "Asymptomatisk CD4 < 350 CD4 tall < 350",  # parquet rows
    "kayaker in deep orange by solita17, Photography->Sunset/Rise gallery",  # parquet row
    "Ed Design Torq >> Asphalt 8 Ed Design Torq Nevada Reverse 1 09 795 St Youtube",  # parquet row
    "A sign saying x > y and y < z", "I <3 my dog", "Shot on a <Samsung S1050> at dusk",
])
def test_angle_brackets_that_are_no_tags_stay(caption):
    assert clean_caption(caption) == caption


@pytest.mark.parametrize("raw, cleaned", [
    ("CafÃ©", "Café"),
    ("CafÃ© on the corner", "Café on the corner"),
    ("â€œQuoted textâ€\x9d here", '"Quoted text" here'),
    ("Ceci n’est pas une pipe", "Ceci n'est pas une pipe"),
    ("Crème brûlée in a ramekin", "Crème brûlée in a ramekin"),  # correct non-ASCII stays
    ("Зимние Reebok Classic Leather черные", "Зимние Reebok Classic Leather черные"),  # parquet row
])
def test_mojibake_is_repaired_and_good_unicode_kept(raw, cleaned):
    assert clean_caption(raw) == cleaned


INVISIBLE = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u202a", "\u202b", "\u202c", "\u202d",
             "\u202e", "\u2066", "\u2067", "\u2068", "\u2069", "\u200e", "\u200f", "\u061c"]


@pytest.mark.parametrize("char", INVISIBLE, ids=[f"U+{ord(c):04X}" for c in INVISIBLE])
def test_zero_width_and_bidi_controls_are_removed(char):
    # Issue 18: they survived cleaning, so two captions that look the same differed (dedup,
    # text.max_repeats) and a right-to-left override reordered what a reader of the data sees.
    assert clean_caption(f"{char}A red{char} car on a{char}{char} beach{char}") == "A red car on a beach"
    assert clean_caption(f"\u00e9t\u00e9{char} \u00e0 Paris") == "\u00e9t\u00e9 \u00e0 Paris"
    assert clean_caption(char * 3) == ""


@pytest.mark.parametrize("raw, cleaned", [
    # Trojan Source (CVE-2021-42574): the override shows "a cat" but the text says "a tac".
    ("a dog and \u202ea tac\u202c on the sofa", "a dog and a tac on the sofa"),
    ("\u2067\u2066A red barn\u2069\u2069 in a field", "A red barn in a field"),
    ("A red&#8203; barn &zwj;in a field&#x202E;", "A red barn in a field"),  # entities decode to them
    ("\ufeffBOM at the start", "BOM at the start"),
    ("family \U0001F468\u200d\U0001F469\u200d\U0001F467 on a beach",  # an emoji ZWJ sequence falls apart
     "family \U0001F468\U0001F469\U0001F467 on a beach"),
])
def test_invisible_characters_in_real_looking_captions(raw, cleaned):
    assert clean_caption(raw) == cleaned


@pytest.mark.parametrize("raw, cleaned", [
    ("A dog https://example.com/x.jpg on a beach", "A dog on a beach"),
    ("A dog on a beach http://example.org/a?b=c&d=e", "A dog on a beach"),
    ("Contact me at john.doe@example.com for prints", "Contact me at for prints"),
    ("visit www.example.org today", "visit today"),
    # parquet rows
    ("Peak AQI - https://files.airnowtech.org/airnow/2012/20121203/peak_aqi_co_ut_az_nm.jpg", "Peak AQI"),
    ("Chocolate Chunk Cookie Sandwiches | ohsodecadent.com", "Chocolate Chunk Cookie Sandwiches"),
    ("Spyder Toddler Leader Jacket - WinterKids.com", "Spyder Toddler Leader Jacket"),
    ("Getting Ready http://www.maharaniweddings.com/gallery/photo/41206 @houseoftalent1",
     "Getting Ready @houseoftalent1"),
    ("Ugears Mechanical Box/Etui Puzzle - bigsmall.in", "Ugears Mechanical Box/Etui Puzzle"),
])
def test_urls_domains_and_email_addresses_are_removed(raw, cleaned):
    assert clean_caption(raw) == cleaned


@pytest.mark.parametrize("text", [
    "The 2015 U.S. Open at St. Louis",
    "Philips HD9240/94 Avance XL Digital Airfryer (2.65lb/3.5qt), Black Fryer",  # parquet row
    "Web 2.0 and e.g. other buzzwords",
    "A sign that says 3.5 km to the summit",
])
def test_dots_that_are_no_urls_stay(text):
    assert clean_caption(text) == text


def test_whitespace_is_collapsed():
    assert clean_caption("  A   dog\t on\n a  beach  ") == "A dog on a beach"
    assert clean_caption("A newly married couple cutting up a  giant hot dog cake.") == \
        "A newly married couple cutting up a giant hot dog cake."  # COCO, with its double space
    assert clean_caption("") == ""
    assert clean_caption(" \t\n ") == ""


@pytest.mark.parametrize("raw", [
    "https://example.com", "www.example.com/page", "example.com", "john@example.com", " http://x.org/a?b=c ",
    "hitachi-solutions.jp", "tutorialblog.org", "TMZ.com", "Stuttgart.de", "bbc.co.uk",  # real alt-texts
    "http://www.yarnspirations.com/patterns/do-the-twist-hat.html",
])
def test_is_url_only_true(raw):
    assert is_url_only(raw)
    assert clean_caption(raw) == ""


@pytest.mark.parametrize("raw", [
    "Visit example.com", "Astropad review on CreativePro.com", "OpenWheelWorld.net Home", "A dog",
    "Peak AQI - https://example.org/aqi", "", "IMG_2345.jpg", "3.5 km",
])
def test_is_url_only_false(raw):
    assert not is_url_only(raw)


@pytest.mark.parametrize("raw", ["futurezone.at", "rodosreport.gr", "mytaste.sg", "DemokratieWEBstatt.at"])
def test_is_url_only_knows_common_country_domains(raw):
    assert is_url_only(raw)


def test_every_url_only_parquet_text_cleans_to_nothing(parquet_texts):
    url_only = [t for t in parquet_texts if is_url_only(t)]
    assert len(url_only) >= 5
    # addresses with a common top-level domain are removed; the rest stay one word the rules reject
    assert all(clean_caption(t) == "" or is_url_only(clean_caption(t)) for t in url_only)
    assert sum(clean_caption(t) == "" for t in url_only) >= len(url_only) // 2


# --- ordinary captions are left alone ---------------------------------------------------------

@pytest.mark.parametrize("caption", [
    "A woman taking a picture",
    "Tourists taking a photo of the Eiffel Tower",
    "A man taking pictures of birds",
    "A photographer taking a picture",
    "Woman with camera taking pictures",
    "A bride poses for a photo",
    "Kids looking at the picture",
    "A boy holding a picture",
    "A family vacation photo at the lake",
    "A wedding photo",
    "Family photo",
    "Photo booth at a wedding",
    "Picture frame on a wall",
    "man with a stock of wood",
    "A woman paying with a credit card",
    "Photographer John Smith at work",
    "A cat, drawn from a photograph",
    "the photo shoot at the beach",
])
def test_captions_that_mention_pictures_are_not_cropped(caption):
    assert clean_caption(caption) == caption
    assert drop_phrase(caption) is None


@pytest.mark.parametrize("raw, cleaned", [
    ("A picture of a bunch food sitting on a table.", "a bunch food sitting on a table."),  # COCO
    ("illustration of a little girl taking a bath", "a little girl taking a bath"),  # CC3M
    ("A young Tony Green (right) with unknown monster (Photograph by Anna Smith)",
     "A young Tony Green (right) with unknown monster"),
    ("Dogsledding through snow-capped trees, Riisitunturi National Park, Finland (Photo by Erkki Ollila)",
     "Dogsledding through snow-capped trees, Riisitunturi National Park, Finland"),
    ("Not the actual bulldozer, but pretty similar. Photo courtesy of Alibaba.com",
     "Not the actual bulldozer, but pretty similar"),
    ("Sunset over the lake - photo by Jane Doe", "Sunset over the lake"),
    ("Sunset over the lake. Photo credit: Jane Doe", "Sunset over the lake"),
    ("Lake at dawn (c) Jane Doe", "Lake at dawn"),
    ("A boat on the river, © Jane Doe", "A boat on the river"),
    ("Mountain lake - Getty Images", "Mountain lake"),
    ("Georgia waving flag against blue sky — Stock Photo #11031981", "Georgia waving flag against blue sky"),
    ("Boy with Autumn leaves Royalty Free Stock Image", "Boy with Autumn leaves"),
    ("Stock Photo: Sunflower", "Sunflower"),
])
def test_media_prefixes_credits_and_stock_suffixes_are_cropped(raw, cleaned):
    assert clean_caption(raw) == cleaned


def test_clean_captions_file_survives_cleaning():
    """The labelled clean captions (COCO, Flickr, CC3M, web): cleaning never empties or drops
    one, and only ever takes away a prefix or suffix (or whitespace)."""
    changed = 0
    for caption in lines("clean_captions.txt"):
        cleaned, tokens = clean_with_tokens(caption)
        assert cleaned, caption
        assert drop_phrase(cleaned, tokens) is None, caption
        spaced = " ".join(caption.split())
        assert cleaned.lower() in spaced.lower(), caption
        assert len(cleaned.split()) >= min(3, len(spaced.split())), caption
        changed += cleaned != spaced
    assert changed <= 25


def test_clean_with_tokens_agrees_with_clean_caption():
    for text in lines("clean_captions.txt")[:100] + lines("junk_alt_texts.txt")[:200]:
        cleaned, tokens = clean_with_tokens(text)
        assert cleaned == clean_caption(text)
        if tokens is not None:
            assert tokens == letter_tokens(cleaned.lower())


# --- bugs found while writing these tests ------------------------------------------------------

@pytest.mark.parametrize("caption", ["Credit card on a table", "Source code on a screen",
                                     "Courtesy car parked outside", "Source of the River Thames"])
def test_captions_starting_with_credit_words_are_kept(caption):
    assert clean_caption(caption) == caption


@pytest.mark.parametrize("raw, kept", [
    ("PHOTO: Jeff Hanneman of Slayer performs onstage during The Big 4 held at the Empire Polo Club on "
     "April 23, 2011 in Indio, Calif.", "Jeff Hanneman of Slayer performs onstage"),  # parquet row
    ("Image: Japanese police officers carry recovered body", "Japanese police officers carry recovered body"),
])
def test_a_photo_label_before_a_real_caption_keeps_the_caption(raw, kept):
    assert kept in clean_caption(raw)


def test_a_missing_space_after_a_full_stop_is_no_domain():
    assert "beach" in clean_caption("Sunset at the beach.It was beautiful")


@pytest.mark.parametrize("caption", ["Loading hay bales onto a trailer", "Loading dock of a warehouse"])
def test_loading_as_a_verb_is_no_placeholder(caption):
    assert drop_phrase(caption) is None
