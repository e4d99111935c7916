"""Bindings declare catalog keys as descriptions; each node translates its own copy."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from textual.dom import DOMNode


def translate_bindings(node: DOMNode, translate: Callable[[str], str]) -> None:
    for key, bindings in node._bindings.key_to_bindings.items():
        node._bindings.key_to_bindings[key] = [
            dataclasses.replace(b, description=translate(b.description))
            if b.description.startswith("binding.")
            else b
            for b in bindings
        ]
