"""Container names: validation and random ``adjective_noun`` defaults (docker's shape, our own words)."""

from __future__ import annotations

from kobako.errors import InvalidArgument

ADJECTIVES = (
    "amber", "bold", "brave", "bright", "calm", "clever", "cosmic", "crisp", "curious", "daring", "dreamy",
    "eager", "early", "fancy", "fierce", "gentle", "glad", "golden", "happy", "hardy", "humble", "jolly",
    "keen", "kind", "lively", "lucid", "lucky", "mellow", "merry", "misty", "modest", "nimble", "noble",
    "patient", "peaceful", "plucky", "polite", "proud", "quick", "quiet", "rapid", "rustic", "serene",
    "sharp", "shiny", "silent", "snowy", "spry", "steady", "sunny", "swift", "tender", "tidy", "vivid",
    "warm", "wise", "witty", "young", "zealous", "zesty",
)  # fmt: skip
NOUNS = (
    "badger", "bamboo", "beacon", "birch", "bison", "brook", "canyon", "cedar", "comet", "coral", "crane",
    "dune", "falcon", "fern", "fjord", "gecko", "glacier", "harbor", "heron", "ibis", "island", "jaguar",
    "kestrel", "koala", "lagoon", "lantern", "lark", "lotus", "maple", "meadow", "mesa", "moose", "nebula",
    "oasis", "orca", "otter", "panda", "pebble", "pine", "plover", "prairie", "quokka", "raven", "reef",
    "river", "robin", "sparrow", "summit", "tapir", "thicket", "tundra", "valley", "walrus", "willow",
    "wombat", "yak", "zebra",
)  # fmt: skip
_FIRST = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_REST = _FIRST | frozenset("_.-")


def random_name(attempt: int = 0) -> str:
    """``adjective_noun``; after a few collisions a digit suffix widens the space (as docker does)."""
    import os

    a, n, d = os.urandom(3)
    name = f"{ADJECTIVES[a % len(ADJECTIVES)]}_{NOUNS[n % len(NOUNS)]}"
    return f"{name}{d % 100}" if attempt >= 3 else name


def check(name: str) -> str:
    """Docker's rule ``[a-zA-Z0-9][a-zA-Z0-9_.-]+``; a leading "/" (as inspect prints it) is accepted."""
    bare = name[1:] if name.startswith("/") else name
    if len(bare) < 2 or bare[0] not in _FIRST or not set(bare) <= _REST or len(bare) > 253:
        raise InvalidArgument(
            f"invalid container name {name!r}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed, 2 characters or more"
        )
    return bare
