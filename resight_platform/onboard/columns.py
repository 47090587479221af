"""Which canonical column each column of a partner's file is, and which of its values the mapping
tables do not know.

A source column is scored against every canonical column of the feed twice: by its name (split
into tokens, abbreviations expanded, compared with the names partners use, ``suggest.yaml``) and by
its values (ids, integers, money, dates, state codes, a vocabulary's words). The best pairs are
taken greedily, each column once. Everything the scoring knows about names and words is data in
``suggest.yaml``; the code only measures.
"""

from __future__ import annotations

import difflib
import functools
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from resight_platform.onboard.formats import enough, guess_date, guess_datetime, guess_money
from resight_platform.onboard.sniff import Guess
from resight_platform.sources.mappings import Mappings, normalise_alias
from resight_platform.sources.registry import CANONICAL_COLUMNS, MAPPED_COLUMNS
from resight_platform.sources.value_maps import SCOPED_MAPS

__all__ = [
    "DEFAULT_KNOWLEDGE",
    "DEFAULT_MIN_CONFIDENCE",
    "KINDS",
    "ColumnMatch",
    "Knowledge",
    "Unknown",
    "is_known",
    "load_knowledge",
    "match_columns",
    "name_tokens",
    "unknown_values",
]

DEFAULT_KNOWLEDGE = Path(__file__).with_name("suggest.yaml")
KINDS: tuple[str, ...] = ("id", "int", "line", "money", "datetime", "date", "state", "zip", "upc", "text", "number")
#: Kinds whose values contradict a name match when they do not fit (an id column may hold anything).
_STRICT = frozenset({"int", "line", "money", "datetime", "date", "state", "zip", "upc", "number"})
#: Below this confidence a column match is not taken and a value guess is not written as a
#: value-map row (both are still reported): ``--min-confidence``.
DEFAULT_MIN_CONFIDENCE = 0.5
#: A column with more distinct values than this is no vocabulary (status, species, …).
MAX_VOCABULARY = 40

_ID = re.compile(r"^[#A-Za-z0-9][A-Za-z0-9_\-./#:]*$")
_INT = re.compile(r"^[+]?\d+(\.0+)?$")
_NUMBER = re.compile(r"^\d+(\.\d+)?$")
_ZIP = re.compile(r"^\d{5}(-\d{4})?$")
_UPC = re.compile(r"^\d{8,14}$")
_LETTER = re.compile(r"[A-Za-z]")
_DIGIT = re.compile(r".*\d")
#: Below this, two names' spelling likeness (difflib's ratio) counts for nothing.
_LIKE = 0.7


@dataclass(frozen=True)
class Knowledge:
    """``suggest.yaml``: abbreviations, per feed the canonical columns' kinds and names, defaults
    for required columns, value hints and what a run does with an unknown value."""

    abbreviations: Mapping[str, str]
    kinds: Mapping[str, Mapping[str, str]]
    names: Mapping[str, Mapping[str, tuple[tuple[str, ...], ...]]]
    defaults: Mapping[str, tuple[str, str]]
    value_hints: Mapping[str, Mapping[str, str]]
    unknown_effects: Mapping[str, str]


def load_knowledge(path: Path = DEFAULT_KNOWLEDGE, mappings: Mappings | None = None) -> Knowledge:
    """Read and check ``path``; raises ``ValueError`` naming the key and the reason."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"{path}: cannot be read: {exc}") from exc
    problems: list[str] = []
    abbreviations = {str(k).lower(): str(v).lower() for k, v in (raw.get("abbreviations") or {}).items()}
    kinds: dict[str, dict[str, str]] = {}
    names: dict[str, dict[str, tuple[tuple[str, ...], ...]]] = {}
    for feed, columns in (raw.get("columns") or {}).items():
        if feed not in CANONICAL_COLUMNS:
            problems.append(f"columns.{feed}: not a feed")
            continue
        for column, spec in (columns or {}).items():
            where = f"columns.{feed}.{column}"
            if column not in CANONICAL_COLUMNS[feed]:
                problems.append(f"{where}: not a canonical {feed} column")
                continue
            if not isinstance(spec, dict):
                problems.append(f"{where}: expected a mapping with kind and names")
                continue
            kind = str(spec.get("kind", ""))
            table = kind.removeprefix("enum:")
            if kind not in KINDS and not (kind.startswith("enum:") and table in SCOPED_MAPS):
                problems.append(f"{where}.kind: {kind!r} is not one of {KINDS} or enum:<{'|'.join(SCOPED_MAPS)}>")
            kinds.setdefault(feed, {})[column] = kind
            phrases = tuple(name_tokens(str(n), abbreviations) for n in spec.get("names") or ())
            names.setdefault(feed, {})[column] = tuple(p for p in phrases if p)
        for column in CANONICAL_COLUMNS[feed]:
            if column not in kinds.get(feed, {}):
                problems.append(f"columns.{feed}.{column}: missing")
    defaults = {str(k): (str(v["value"]), str(v.get("why", ""))) for k, v in (raw.get("defaults") or {}).items()}
    hints = {
        str(t): {normalise_alias(str(a)): str(v) for a, v in (m or {}).items()}
        for t, m in (raw.get("value_hints") or {}).items()
    }
    for table, entries in hints.items():
        if table not in SCOPED_MAPS:
            problems.append(f"value_hints.{table}: not one of {SCOPED_MAPS}")
        elif mappings is not None:
            known = mappings.canonical(table)
            problems.extend(
                f"value_hints.{table}.{alias}: {value!r} is not a canonical {table} value"
                for alias, value in entries.items()
                if value not in known
            )
    if problems:
        raise ValueError(f"{path}: " + "; ".join(problems))
    return Knowledge(
        abbreviations=abbreviations,
        kinds=kinds,
        names=names,
        defaults=defaults,
        value_hints=hints,
        unknown_effects={str(k): str(v) for k, v in (raw.get("unknown_effects") or {}).items()},
    )


def name_tokens(name: str, abbreviations: Mapping[str, str]) -> tuple[str, ...]:
    """A column name as lower-case word tokens, abbreviations expanded: ``"ItemSKU"`` -> (item,
    sku), ``" Qty "`` -> (quantity,), ``"order#"`` -> (order, number)."""
    spaced = re.sub(r"([a-z])([A-Z])", r"\1 \2", name.strip())
    spaced = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1 \2", spaced)
    spaced = re.sub(r"([A-Za-z])(\d)|(\d)([A-Za-z])", lambda m: " ".join(g for g in m.groups() if g), spaced)
    spaced = spaced.replace("#", " # ")
    tokens = [t for t in re.split(r"[^A-Za-z0-9#]+", spaced.lower()) if t]
    return tuple(abbreviations.get(t, t) for t in tokens)


def _name_score(tokens: tuple[str, ...], phrases: Sequence[tuple[str, ...]]) -> tuple[float, str]:
    best, best_phrase = 0.0, ""
    for phrase in phrases:
        if tokens == phrase or "".join(tokens) == "".join(phrase):
            score = 1.0
        elif set(tokens) == set(phrase):
            score = 0.95
        else:
            shared = len(set(tokens) & set(phrase)) / len(set(tokens) | set(phrase))
            ratio = difflib.SequenceMatcher(None, " ".join(tokens), " ".join(phrase)).ratio()
            # Short names are alike by chance ("state" and "store" share 60%): a weak likeness is none.
            score = 0.85 * max(shared, ratio if ratio >= _LIKE else 0.0)
        if score > best:
            best, best_phrase = score, " ".join(phrase)
    return best, best_phrase


def is_known(table: str, value: str, mappings: Mappings) -> bool:
    """Whether the global tables map ``value`` (as silver would look it up)."""
    if table == "states":
        return value.strip().upper() in mappings.regions
    if table == "categories" and value.strip() in mappings.canonical("categories"):
        return True
    if table == "brands":
        return normalise_alias(value) in mappings.brands
    return normalise_alias(value) in getattr(mappings, table)


@dataclass(frozen=True)
class _Fit:
    score: float
    evidence: str
    format: Guess | None = None


#: A column's formats are asked for once per canonical column it is scored against: read once.
_datetime_of = functools.lru_cache(maxsize=64)(guess_datetime)
_date_of = functools.lru_cache(maxsize=64)(guess_date)


def _share(values: list[str], pattern: re.Pattern[str]) -> float:
    return sum(1 for v in values if pattern.match(v)) / len(values)


def _value_fit(
    kind: str,
    values: list[str],
    counts: Counter[str],
    tokens: tuple[str, ...],
    mappings: Mappings,
    knowledge: Knowledge,
) -> _Fit:
    """How well a column's non-empty ``values`` fit ``kind`` (0..1), and why."""
    n = len(values)
    distinct = len(counts)
    if kind in ("int", "line"):
        numbers = sorted(int(float(v)) for v in values if _INT.match(v))
        share = len(numbers) / n
        if not enough(len(numbers), n):
            return _Fit(share * 0.5, f"{share:.0%} whole numbers")
        top = numbers[int(0.9 * (len(numbers) - 1))]  # a stray huge value is a bad row, not the column
        ceiling = 999 if kind == "line" else 100_000
        said = f"{share:.0%} whole numbers, up to {top} (90th percentile)"
        return _Fit(share if top <= ceiling else 0.3, said)
    if kind == "number":
        share = _share(values, _NUMBER)
        return _Fit(share, f"{share:.0%} numbers")
    if kind == "money":
        guess = guess_money(values, tokens)
        if guess is None:
            return _Fit(0.0, "not amounts")
        strength = 1.0 if guess.value == "currency" else guess.confidence
        return _Fit(strength, f"money: {guess.evidence}", guess)
    if kind == "datetime":
        guess = _datetime_of(tuple(values))
        if guess is None:
            day = _date_of(tuple(values))  # a sale's date alone reads as its midnight
            return _Fit(0.8, f"dates without a time: {day.evidence}", day) if day else _Fit(0.0, "not timestamps")
        return _Fit(0.7 if guess.value in ("%s", "epoch_ms") else 1.0, f"timestamps: {guess.evidence}", guess)
    if kind == "date":
        guess = _date_of(tuple(values))
        if guess is None:
            dt = _datetime_of(tuple(values))
            return _Fit(0.4, f"timestamps, not dates: {dt.evidence}", dt) if dt else _Fit(0.0, "not dates")
        return _Fit(1.0, f"dates: {guess.evidence}", guess)
    if kind == "state":
        codes = sum(1 for v in values if v.strip().upper() in mappings.regions)
        named = sum(1 for v in values if normalise_alias(v) in knowledge.value_hints.get("states", {}))
        share = (codes + named) / n
        said = f"{codes / n:.0%} US state codes" + (f", {named / n:.0%} state names" if named else "")
        return _Fit(share, said)
    if kind == "zip":
        share = _share(values, _ZIP)
        return _Fit(share, f"{share:.0%} ZIP codes")
    if kind == "upc":
        share = _share(values, _UPC)
        return _Fit(share, f"{share:.0%} 8-14 digit codes")
    if kind == "id":
        share = _share(values, _ID) * (0.5 + 0.5 * _share(values, _DIGIT))
        dated = _datetime_of(tuple(values)) is not None and not all(_INT.match(v) for v in values)
        if dated:
            return _Fit(0.1, "timestamps, not ids")
        return _Fit(share, f"id-like ({distinct} distinct of {n}), {_share(values, _DIGIT):.0%} with digits")
    if kind == "text":
        share = sum(1 for v in values if _LETTER.search(v)) / n
        spaced = sum(1 for v in values if " " in v.strip()) / n
        return _Fit(min(1.0, share * (0.7 + 0.3 * spaced)), f"{share:.0%} text ({distinct} distinct)")
    table = kind.removeprefix("enum:")
    known = [v for v in counts if is_known(table, v, mappings)]
    if table == "brands":
        text = sum(1 for v in values if _LETTER.search(v)) / n
        return _Fit(
            0.5 * text + 0.5 * len(known) / distinct, f"{len(known)} of {distinct} distinct values are known brands"
        )
    if distinct > MAX_VOCABULARY:
        return _Fit(0.0, f"{distinct} distinct values: not a vocabulary")
    return _Fit(
        0.3 + 0.7 * len(known) / distinct,
        f"{distinct} distinct values, {len(known)} in mappings/{table}.csv",
    )


@dataclass(frozen=True)
class ColumnMatch:
    """A source column taken for a canonical column, with its confidence and evidence."""

    source: str
    canonical: str
    confidence: float
    evidence: str
    format: Guess | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "source": self.source,
            "canonical": self.canonical,
            "confidence": round(self.confidence, 2),
            "evidence": self.evidence,
        }


def match_columns(
    feed: str,
    columns: Mapping[str, Sequence[str | None]],
    knowledge: Knowledge,
    mappings: Mappings,
    *,
    min_confidence: float,
) -> list[ColumnMatch]:
    """The source -> canonical pairs of one feed at ``min_confidence`` or above, each source and
    canonical column at most once (the best pairs first), in the file's column order."""
    candidates: list[tuple[float, int, int, ColumnMatch]] = []
    for s_index, (source, raw) in enumerate(columns.items()):
        values = [v.strip() for v in raw if v is not None and v.strip()]
        counts = Counter(values)
        tokens = name_tokens(source, knowledge.abbreviations)
        for c_index, canonical in enumerate(CANONICAL_COLUMNS[feed]):
            kind = knowledge.kinds[feed][canonical]
            name, phrase = _name_score(tokens, knowledge.names[feed][canonical])
            if not values:
                confidence, fit = 0.8 * name, _Fit(0.0, "no values in the sample")
            else:
                fit = _value_fit(kind, values, counts, tokens, mappings, knowledge)
                confidence = 0.6 * name + 0.4 * fit.score
                if fit.score < 0.3 and (kind in _STRICT or kind.startswith("enum:")):
                    confidence *= 0.5
            if confidence < min_confidence:
                continue
            said = f"name ~ {phrase!r} ({name:.2f})" if name >= 0.5 else f"name unlike ({name:.2f})"
            evidence = f"{said}; values {fit.evidence} ({fit.score:.2f})"
            match = ColumnMatch(source, canonical, min(confidence, 1.0), evidence, fit.format)
            candidates.append((-confidence, s_index, c_index, match))
    taken_source: dict[str, int] = {}
    taken_canonical: set[str] = set()
    out: list[ColumnMatch] = []
    for _, s_index, _, match in sorted(candidates, key=lambda c: c[:3]):
        if match.source in taken_source or match.canonical in taken_canonical:
            continue
        taken_source[match.source] = s_index
        taken_canonical.add(match.canonical)
        out.append(match)
    return sorted(out, key=lambda m: taken_source[m.source])  # in the file's column order


@dataclass(frozen=True)
class Unknown:
    """A value of a mapped column that neither the global tables nor a value map knows, with a
    guessed canonical value when one is close."""

    canonical: str
    source: str
    map: str
    value: str
    count: int
    guess: str | None
    confidence: float
    evidence: str
    #: What a run does with the value while no map knows it (``suggest.yaml``'s unknown_effects).
    effect: str = ""

    def as_dict(self) -> dict[str, object]:
        return {
            "canonical": self.canonical,
            "source": self.source,
            "map": self.map,
            "value": self.value,
            "count": self.count,
            "guess": self.guess,
            "confidence": round(self.confidence, 2),
            "evidence": self.evidence,
            "effect": self.effect,
        }


def _aliases(table: str, mappings: Mappings) -> dict[str, str]:
    if table == "brands":
        return {alias: brand for alias, (brand, _) in mappings.brands.items()}
    if table == "states":
        return {state.lower(): state for state in mappings.regions}
    return dict(getattr(mappings, table))


def _compact(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def _subsequence(short: str, long: str) -> bool:
    rest = iter(long)
    return all(ch in rest for ch in short)


def guess_target(table: str, value: str, knowledge: Knowledge, mappings: Mappings) -> tuple[str | None, float, str]:
    """The canonical value an unknown ``value`` of ``table`` most likely means: a hint of
    ``suggest.yaml``, an alias spelled alike but for punctuation, an abbreviation of one alias, or a
    close spelling; (None, 0, reason) when none is close."""
    alias = normalise_alias(value)
    hints = knowledge.value_hints.get(table, {})
    if alias in hints:
        return hints[alias], 0.8, f"suggest.yaml's hints: {alias!r} usually means {hints[alias]!r}"
    aliases = _aliases(table, mappings)
    compact = _compact(alias)
    same = {target for a, target in aliases.items() if _compact(a) == compact and compact}
    if len(same) == 1:
        target = same.pop()
        return target, 0.9, f"spelled as a known alias but for spaces or punctuation ({target!r})"
    if len(compact) >= 2:
        abbreviated = {
            target: a
            for a, target in aliases.items()
            if len(_compact(a)) > len(compact) and _compact(a)[0] == compact[0] and _subsequence(compact, _compact(a))
        }
        if len(abbreviated) == 1:
            target, a = next(iter(abbreviated.items()))
            return target, 0.6, f"an abbreviation of the alias {a!r}"
    close = difflib.get_close_matches(alias, list(aliases), n=1, cutoff=0.75)
    if close:
        ratio = difflib.SequenceMatcher(None, alias, close[0]).ratio()
        return aliases[close[0]], round(0.8 * ratio, 2), f"spelled like the alias {close[0]!r} ({ratio:.2f})"
    return None, 0.0, "no known alias is close"


def unknown_values(
    feed: str,
    matches: Sequence[ColumnMatch],
    columns: Mapping[str, Sequence[str | None]],
    knowledge: Knowledge,
    mappings: Mappings,
    *,
    limit: int,
) -> list[Unknown]:
    """The distinct values (with counts, most frequent first, ``limit`` per column) of the mapped
    columns that the global tables do not know."""
    out: list[Unknown] = []
    for match in matches:
        column_map = MAPPED_COLUMNS.get(match.canonical)
        if column_map is None:
            continue
        table = "states" if column_map == "states" else column_map
        counts = Counter(v.strip() for v in columns[match.source] if v is not None and v.strip())
        unknown = sorted(
            ((v, n) for v, n in counts.items() if not is_known(table, v, mappings)), key=lambda x: (-x[1], x[0])
        )
        for value, count in unknown[:limit]:
            target, confidence, evidence = guess_target(table, value, knowledge, mappings)
            effect = knowledge.unknown_effects.get(table, "")
            out.append(
                Unknown(match.canonical, match.source, table, value, count, target, confidence, evidence, effect)
            )
    return out
