"""Data categories over VSS paths: what a signal is, for collection, sharing and transfer rules.

The catalog (``data/categories.yaml``) lists the categories, each with a description, whether ingest collects
it without consent (``collect_by_default``) and the sources behind it, and rules that assign categories to
paths by glob pattern. In a pattern ``*`` is one path segment (or part of one: ``Row*``) and ``**`` any number
of segments. For a path the matching rules with the most literal segments win (then those with more partly
literal segments, then those with fewer ``**``); categories of equally specific rules are combined.
"""

from __future__ import annotations

import fnmatch
import functools
from dataclasses import dataclass
from importlib import resources

from trustlane.errors import MalformedInput
from trustlane.ingest.yamlsrc import LineDict, check_keys, load_yaml, require_map

CATALOG_VERSION = 1
UNCLASSIFIED = "vendor-unclassified"

_TOP_KEYS = frozenset({"version", "categories", "rules"})
_CATEGORY_KEYS = frozenset({"title", "description", "collect_by_default", "sources"})
_SOURCE_KEYS = frozenset({"ref", "note", "verified"})
_RULE_KEYS = frozenset({"match", "categories"})
_WILDCARD_CHARS = frozenset("*?[")


@dataclass(frozen=True)
class Citation:
    """A source behind a category. ``verified`` is False when clause or wording were not checked."""

    ref: str
    note: str
    verified: bool

    def text(self) -> str:
        return self.ref if self.verified else f"{self.ref} (unverified)"


@dataclass(frozen=True)
class Category:
    id: str
    title: str
    description: str
    collect_by_default: bool
    sources: tuple[Citation, ...]

    def citation_text(self) -> str:
        """The sources in one line, for receipts and ledger events: ``A; B (unverified)``."""
        return "; ".join(c.text() for c in self.sources)


@dataclass(frozen=True)
class CategoryRule:
    """One pattern of a rule (a rule listing several patterns becomes several of these)."""

    pattern: str
    categories: tuple[str, ...]
    line: int

    @property
    def specificity(self) -> tuple[int, int, int]:
        segments = self.pattern.split(".")
        literal = sum(1 for s in segments if not _WILDCARD_CHARS & set(s))
        partial = sum(1 for s in segments if s != "**" and s != "*" and _WILDCARD_CHARS & set(s))
        return literal, partial, -segments.count("**")

    def matches(self, path: str) -> bool:
        return _match(tuple(self.pattern.split(".")), tuple(path.split(".")))


@functools.lru_cache(maxsize=1 << 16)
def _match(pattern: tuple[str, ...], path: tuple[str, ...]) -> bool:
    if not pattern:
        return not path
    head, rest = pattern[0], pattern[1:]
    if head == "**":
        return any(_match(rest, path[i:]) for i in range(len(path) + 1))
    return bool(path) and fnmatch.fnmatchcase(path[0], head) and _match(rest, path[1:])


class CategoryCatalog:
    """Categories and the rules that assign them to paths."""

    def __init__(self, categories: tuple[Category, ...], rules: tuple[CategoryRule, ...]) -> None:
        self.categories = categories
        self.rules = rules
        self._by_id = {c.id: c for c in categories}
        self._classified: dict[str, tuple[str, ...]] = {}  # live telemetry asks for the same paths again and again

    @classmethod
    def from_yaml(cls, text: str, *, source: str) -> CategoryCatalog:
        """Parse and check a category file; every error names ``source`` and the line."""
        doc = require_map(load_yaml(text, source=source), where=source, what="the category file")
        check_keys(doc, _TOP_KEYS, source=source, what="the category file")
        if doc.get("version") != CATALOG_VERSION:
            raise MalformedInput(
                f"{source}:{doc.line_of('version')}: version is {doc.get('version')!r}, expected {CATALOG_VERSION}"
            )
        cats = require_map(doc.get("categories"), where=f"{source}:{doc.line_of('categories')}", what="categories")
        categories = tuple(_category(cid, cats, source) for cid in cats)
        known = {c.id for c in categories}
        raw_rules = doc.get("rules")
        if not isinstance(raw_rules, list) or not raw_rules:
            raise MalformedInput(f"{source}:{doc.line_of('rules')}: rules must be a non-empty list")
        rules = tuple(r for raw in raw_rules for r in _rules(raw, known, source))
        return cls(categories, rules)

    @classmethod
    def load(cls) -> CategoryCatalog:
        """The catalog shipped inside the package."""
        text = (resources.files("trustlane.ingest") / "data" / "categories.yaml").read_text("utf-8")
        return cls.from_yaml(text, source="categories.yaml")

    def get(self, category_id: str) -> Category | None:
        return self._by_id.get(category_id)

    def category(self, category_id: str) -> Category:
        found = self._by_id.get(category_id)
        if found is None:
            raise MalformedInput(
                f"unknown data category {category_id!r}", hint=f"known categories: {', '.join(self._by_id)}"
            )
        return found

    def winning_rules(self, path: str) -> tuple[CategoryRule, ...]:
        """The most specific rules matching ``path`` (empty when none matches)."""
        matching = [r for r in self.rules if r.matches(path)]
        if not matching:
            return ()
        best = max(r.specificity for r in matching)
        return tuple(r for r in matching if r.specificity == best)

    def classify(self, path: str) -> tuple[str, ...]:
        """The categories of ``path``, in catalog order; empty when no rule matches."""
        known = self._classified.get(path)
        if known is None:
            ids = {cid for rule in self.winning_rules(path) for cid in rule.categories}
            known = tuple(c.id for c in self.categories if c.id in ids)
            if len(self._classified) < 100_000:
                self._classified[path] = known
        return known


def _category(cid: object, cats: LineDict, source: str) -> Category:
    line = cats.line_of(cid)
    where = f"{source}:{line}"
    if not isinstance(cid, str) or not cid:
        raise MalformedInput(f"{where}: a category id must be a non-empty string")
    body = require_map(cats[cid], where=where, what=f"category {cid}")
    check_keys(body, _CATEGORY_KEYS, source=source, what=f"category {cid}")
    description, title = body.get("description"), body.get("title", cid)
    collect = body.get("collect_by_default")
    if not isinstance(description, str) or not description.strip() or not isinstance(title, str):
        raise MalformedInput(f"{where}: category {cid} needs a title and a description (text)")
    if not isinstance(collect, bool):
        raise MalformedInput(f"{where}: category {cid}: collect_by_default must be true or false")
    raw_sources = body.get("sources")
    if not isinstance(raw_sources, list) or not raw_sources:
        raise MalformedInput(
            f"{where}: category {cid} has no sources", hint="every category says where it comes from (ref, note)"
        )
    sources = []
    for raw in raw_sources:
        item = require_map(raw, where=f"{source}:{body.line_of('sources')}", what="a source")
        check_keys(item, _SOURCE_KEYS, source=source, what="a source")
        ref, note, verified = item.get("ref"), item.get("note", ""), item.get("verified")
        if not isinstance(ref, str) or not ref or not isinstance(note, str) or not isinstance(verified, bool):
            raise MalformedInput(
                f"{source}:{item.line}: a source needs ref (text), note (text) and verified (true or false)"
            )
        sources.append(Citation(ref=ref, note=" ".join(note.split()), verified=verified))
    return Category(cid, title, " ".join(description.split()), collect, tuple(sources))


def _rules(raw: object, known: set[str], source: str) -> list[CategoryRule]:
    rule = require_map(raw, where=source, what="a rule")
    check_keys(rule, _RULE_KEYS, source=source, what="a rule")
    where = f"{source}:{rule.line}"
    patterns = rule.get("match")
    if isinstance(patterns, str):
        patterns = [patterns]
    if not isinstance(patterns, list) or not patterns or not all(isinstance(p, str) and p for p in patterns):
        raise MalformedInput(f"{where}: match must be a pattern or a list of patterns")
    cats = rule.get("categories")
    if not isinstance(cats, list) or not cats or not all(isinstance(c, str) for c in cats):
        raise MalformedInput(f"{where}: categories must be a non-empty list of category ids")
    for cid in cats:
        if cid not in known:
            raise MalformedInput(f"{where}: unknown category {cid!r}", hint=f"known categories: {', '.join(known)}")
    for pattern in patterns:
        if any(not seg for seg in pattern.split(".")) or any("**" in s and s != "**" for s in pattern.split(".")):
            raise MalformedInput(
                f"{where}: bad pattern {pattern!r}", hint="segments are names, *, ** or globs like Row*"
            )
    return [CategoryRule(pattern=p, categories=tuple(cats), line=rule.line) for p in patterns]


@functools.cache
def default_categories() -> CategoryCatalog:
    """The shipped category catalog, loaded once per process."""
    return CategoryCatalog.load()


def classify(path: str) -> tuple[str, ...]:
    """The categories of ``path`` under the shipped catalog."""
    return default_categories().classify(path)


__all__ = [
    "UNCLASSIFIED",
    "Category",
    "CategoryCatalog",
    "CategoryRule",
    "Citation",
    "classify",
    "default_categories",
]
