"""The French regions a town can be in: metropolitan France and the overseas ones.

A module of its own so that phone number parsing does not load the config's
validation (pydantic) to know them.
"""

from __future__ import annotations

FRENCH_REGIONS = ("FR", "RE", "YT", "GP", "MQ", "GF", "PM", "BL", "MF", "NC", "PF", "WF")
