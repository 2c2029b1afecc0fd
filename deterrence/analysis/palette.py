"""The colours of coded outcomes, one home for the report, the API's maps and the dashboard.

Okabe & Ito (2008): distinguishable with the common colour-vision deficiencies.
"""

from __future__ import annotations

from ..solve.equilibrium import REGIME_NAMES

#: The Okabe-Ito palette, in its published order after black.
OKABE_ITO = ("#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7",
             "#000000")
#: Regime -> colour: deterred green, defended blue, abandoned vermillion, mixed purple.
REGIME_COLOURS = dict(zip(REGIME_NAMES, ("#009E73", "#0072B2", "#D55E00", "#CC79A7"),
                          strict=True))


def colours_of(names) -> list[str]:
    """Colours for the categories ``names``: a regime's own colour, else the Okabe-Ito
    colours not yet used, in order (``no``, ``yes`` of ``equilibrium_set_complete``:
    orange, sky blue). Raises ValueError if there are more categories than colours."""
    chosen = [REGIME_COLOURS.get(name) for name in names]
    spare = iter(c for c in OKABE_ITO if c not in chosen)
    try:
        return [c if c is not None else next(spare) for c in chosen]
    except StopIteration:
        raise ValueError(f"{len(names)} categories; at most {len(OKABE_ITO)} colours can be "
                         "told apart") from None
