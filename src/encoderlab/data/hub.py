"""The one ``hub:`` grammar of every data option (QA data, text data, MLM corpora).

``hub:NAME[:CONFIG][:SPLIT]`` names a Hugging Face Hub data set loaded with ``datasets.load_dataset``:

* ``hub:squad`` — the loader's default split (``validation`` for QA data, ``train`` for text and corpora);
* ``hub:squad:validation`` / ``hub:imdb:test[:10%]`` — a second part that is a split name
  (:data:`KNOWN_SPLITS`) or a slice (holds ``[``) is the split;
* ``hub:wikitext:wikitext-2-raw-v1`` — any other second part is the configuration;
* ``hub:glue:sst2:validation`` — name, configuration, split.

NAME may hold ``/`` (``hub:org/name``). Loading failures (offline, unknown name) are one
:class:`~encoderlab.errors.DataError` line naming the spec.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..errors import DataError

PREFIX = "hub:"
GRAMMAR = "hub:NAME[:CONFIG][:SPLIT]"
KNOWN_SPLITS = ("train", "validation", "test", "unsupervised", "unsup", "dev")


@dataclass(frozen=True)
class HubSpec:
    """A parsed ``hub:`` spec; ``config`` / ``split`` are None when not given."""
    name: str
    config: str | None = None
    split: str | None = None

    def __str__(self) -> str:
        return PREFIX + ":".join(p for p in (self.name, self.config, self.split) if p)


def is_hub_spec(spec: Any) -> bool:
    return str(spec).startswith(PREFIX)


def _is_split(part: str) -> bool:
    return part in KNOWN_SPLITS or "[" in part


def parse_hub_spec(spec: str) -> HubSpec:
    """``hub:NAME[:CONFIG][:SPLIT]`` (the ``hub:`` prefix optional) -> HubSpec; DataError when malformed."""
    body = spec[len(PREFIX):] if spec.startswith(PREFIX) else spec
    parts = re.split(r":(?![^\[]*\])", body)       # a slice (test[:10%]) keeps its colon
    if not parts[0] or len(parts) > 3 or any(not p for p in parts[1:]):
        raise DataError(f"{spec}: expected {GRAMMAR} (e.g. hub:squad, hub:imdb:test, hub:glue:sst2:validation)")
    if len(parts) == 1:
        return HubSpec(parts[0])
    if len(parts) == 2:
        return HubSpec(parts[0], split=parts[1]) if _is_split(parts[1]) else HubSpec(parts[0], config=parts[1])
    return HubSpec(parts[0], parts[1], parts[2])


def load_hub_dataset(spec: str | HubSpec, *, default_split: str = "train"):
    """``datasets.load_dataset(name, config, split=split or default_split)``; any failure is one DataError line."""
    hub = spec if isinstance(spec, HubSpec) else parse_hub_spec(spec)
    try:
        import datasets

        return datasets.load_dataset(hub.name, hub.config, split=hub.split or default_split)
    except Exception as exc:  # datasets raises many types (ConnectionError, FileNotFoundError, ValueError…)
        detail = str(exc).splitlines()[0][:160] if str(exc) else "no details"
        raise DataError(f"{spec}: could not be loaded from the Hugging Face Hub (offline or unknown data set? "
                        f"{type(exc).__name__}: {detail})") from exc
