"""Reading YAML: the one loader for every YAML text rasa-gpu reads.

PyYAML's C loader (libyaml) when this PyYAML has it, else its pure-Python safe loader: the same documents, several
times faster. PyYAML itself is imported on first use, so that commands which read no YAML (`--help`) never load it.

Aliases are bounded: a node reached through an alias is one more node for everything that walks the content (the
input hash's JSON, Rasa itself), so a few hundred bytes of nested aliases (a "billion laughs" document) would expand
to gigabytes. A document whose aliases add more than MAX_ALIAS_NODES nodes, or that holds itself, is refused.
"""

from __future__ import annotations

from typing import Any

#: How many nodes aliases may add to a document when it is expanded. Real Rasa files use a few aliases, if any
#: (shared response variations, a merged slot mapping): thousands of nodes at most.
MAX_ALIAS_NODES = 100_000


def load(text: str | bytes) -> Any:
    """Parse one YAML document safely (no Python objects); raises yaml.YAMLError (yaml.MarkedYAMLError with the
    line and column where the parser has them), also for a document whose aliases expand too far."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if ("*" if isinstance(text, str) else b"*") in text:  # type: ignore[operator]  # an alias needs a '*'
            _check_aliases(node)
        return loader.construct_document(node)
    except RecursionError:
        raise yaml.YAMLError("the document is nested too deeply") from None
    finally:
        loader.dispose()


def _check_aliases(root: Any) -> None:
    """Raise a ConstructorError, at the node where it happens, when the document expanded through its aliases would
    have more than MAX_ALIAS_NODES nodes on top of its own, or would contain itself. Walks each node once."""
    from yaml.constructor import ConstructorError
    from yaml.nodes import CollectionNode, MappingNode

    def children(node: Any) -> list[Any]:
        if isinstance(node, MappingNode):
            return [part for pair in node.value for part in pair]
        return list(node.value) if isinstance(node, CollectionNode) else []

    # Expanded size of each node (itself and everything under it, an aliased node counted each time it is used),
    # computed children first without expanding anything.
    expanded: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            on_path.discard(key)
            expanded[key] = 1 + sum(expanded[id(child)] for child in children(node))
            if expanded[key] > len(expanded) + MAX_ALIAS_NODES:  # len(expanded): distinct nodes so far
                raise ConstructorError(
                    None,
                    None,
                    f"its aliases expand to more than {MAX_ALIAS_NODES} nodes; write the content out instead of "
                    "nesting aliases (*name)",
                    node.start_mark,
                )
            continue
        if key in expanded:
            continue
        if key in on_path:
            raise ConstructorError(
                None, None, "an alias refers to a node that holds it; write the content out", node.start_mark
            )
        on_path.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in children(node) if id(child) not in expanded)
