"""The one palette of coded outcomes: each regime keeps its colour everywhere, and other
categories get distinct Okabe-Ito colours."""

from __future__ import annotations

import pytest

from deterrence.analysis.palette import OKABE_ITO, REGIME_COLOURS, colours_of
from deterrence.solve.equilibrium import MAP_VARIABLES, REGIME_NAMES


def test_every_regime_has_its_own_colour():
    assert list(REGIME_COLOURS) == list(REGIME_NAMES)
    assert len(set(REGIME_COLOURS.values())) == len(REGIME_NAMES)
    assert set(REGIME_COLOURS.values()) <= set(OKABE_ITO)


def test_whether_the_set_is_complete_gets_two_colours_unlike_the_regimes():
    names = MAP_VARIABLES["equilibrium_set_complete"]["flag_meanings"].split()
    colours = colours_of(names)
    assert names == ["no", "yes"] and len(set(colours)) == 2
    assert not set(colours) & set(REGIME_COLOURS.values())


def test_known_names_keep_their_colours_and_others_get_unused_ones():
    assert colours_of(list(REGIME_NAMES)) == [REGIME_COLOURS[n] for n in REGIME_NAMES]
    mixed = ["abandoned", "first", "second"]
    colours = colours_of(mixed)
    assert colours[0] == REGIME_COLOURS["abandoned"]
    assert len(set(colours)) == 3 and set(colours[1:]) <= set(OKABE_ITO)


def test_more_categories_than_colours_are_refused():
    with pytest.raises(ValueError, match="at most 8 colours"):
        colours_of([f"c{i}" for i in range(len(OKABE_ITO) + 1)])
