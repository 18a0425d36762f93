"""YAML read safely: plain data only, and aliases that cannot expand without bound.

``yaml.safe_load`` builds no objects, but its aliases share nodes: nine anchors of nine aliases
each (the "billion laughs") are 72 aliases in the file and 9⁸ values once anything walks the
data (a digest, a schema check). The composed node graph is measured before it is used.
"""

from __future__ import annotations

from typing import Any

import yaml

#: Values a pipeline or parameter file may expand to (radimt's own are a few hundred).
MAX_YAML_VALUES = 100_000


class YAMLTooLarge(yaml.YAMLError):
    """A YAML document whose aliases expand beyond :data:`MAX_YAML_VALUES`."""


def expanded_size(node: yaml.Node, limit: int = MAX_YAML_VALUES) -> int:
    """How many values ``node`` holds once every alias is expanded (counting stops past ``limit``).

    Examples
    --------
    >>> expanded_size(yaml.compose("a: &x [1, 2]\\nb: [*x, *x]"))
    13
    """
    sizes: dict[int, int] = {}

    def size(n: yaml.Node) -> int:
        key = id(n)
        if key not in sizes:
            sizes[key] = 0  # a recursive alias counts once (safe_load refuses to build it anyway)
            if isinstance(n, yaml.MappingNode):
                total = 1 + sum(size(k) + size(v) for k, v in n.value)
            elif isinstance(n, yaml.SequenceNode):
                total = 1 + sum(size(v) for v in n.value)
            else:
                total = 1
            sizes[key] = min(total, limit + 1)
        return sizes[key]

    return size(node)


def safe_load(text: str) -> Any:
    """``yaml.safe_load`` that refuses a document expanding to more than
    :data:`MAX_YAML_VALUES` values (raises :class:`YAMLTooLarge`, a ``yaml.YAMLError``)."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        size = expanded_size(root) if root is not None else 0
    except RecursionError:
        raise YAMLTooLarge("nested too deeply to be a settings file") from None
    if size > MAX_YAML_VALUES:
        raise YAMLTooLarge(
            f"its aliases expand to more than {MAX_YAML_VALUES:,} values (a YAML alias bomb?); "
            "write the settings out without anchors and aliases"
        )
    return yaml.safe_load(text)
