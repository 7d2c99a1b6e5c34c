"""A generated story for tests and benchmarks that add a story to a running bot: a few
hand-written paragraphs (one answers QUESTION) padded to any size with market stalls."""
from __future__ import annotations

import itertools

QUESTION = "Who designed the floating stage of the river festival?"

FESTIVAL = """---
title: A river festival on recycled barges
outlet: Test Gazette
date: 2026-06-21
---
# A river festival on recycled barges

The floating stage of the river festival was designed by the architect Mireille Okonjo, who built it
from three recycled grain barges moored below the old bridge.

The organisers counted forty-two thousand visitors over the weekend, twice as many as last year.

## The market on the quays
"""


def festival_story(size: int = 20_000) -> str:
    """A story of about ``size`` bytes: the paragraphs above, then market stalls of many kinds."""
    streets = ["Quai Saint-Vincent", "Rue des Tanneurs", "Place du Change", "Quai Fulchiron", "Rue Mercière",
               "Montée du Gourguillon", "Place Bellecour", "Rue Saint-Jean"]
    goods = ["honey", "walnut bread", "goat cheese", "pressed cider", "lavender soap", "smoked trout",
             "apricot jam", "wooden toys", "linen scarves", "chestnut flour"]
    text = FESTIVAL
    for n, (street, good) in enumerate(itertools.product(streets, goods), 1):
        if len(text.encode()) > size - 200:
            break
        text += (f"\nStall {n} on {street} sold {17 * n % 400 + 20} jars and parcels of {good} on Saturday. "
                 f"Its keeper said the {good} came from a farm {n % 9 + 2} kilometres upstream, and that the "
                 f"crowd on {street} was the largest she had seen since the market opened.\n")
    return text
