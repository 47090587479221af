"""``resight onboard suggest``: a draft registry for a new partner from a few of its sample files.

The files are sniffed (``sniff.py``: format, encoding, CSV dialect), their columns matched to the
feed's canonical columns (``columns.py``), their date, datetime and money formats guessed
(``formats.py``), and the values the mapping tables do not know listed with a guessed canonical
value. ``draft.py`` writes it as draft registry files in ``--out`` (a partner's feeds one run
each) and loads the base registry with the draft merged in. Nothing is guessed silently: every
choice is in the report with its confidence, and what no registry value can express is a blocker.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from resight_platform.onboard.columns import (
    DEFAULT_KNOWLEDGE,
    DEFAULT_MIN_CONFIDENCE,
    ColumnMatch,
    Knowledge,
    Unknown,
    load_knowledge,
    match_columns,
    name_tokens,
    unknown_values,
)
from resight_platform.onboard.draft import Draft, DraftError, write_draft
from resight_platform.onboard.formats import EPOCH_SECONDS, date_part, guess_date, guess_datetime, guess_money
from resight_platform.onboard.sniff import (
    ASCII_ONLY,
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_ROWS,
    Guess,
    Sample,
    SampleError,
    read_sample,
)
from resight_platform.sources.registry import (
    DEFAULT_REGISTRY_DIR,
    FEEDS,
    KINDS,
    MAPPED_COLUMNS,
    PROVIDER_PATTERN,
    REQUIRED_COLUMNS,
    Registry,
    RegistryError,
    load_registry,
)

__all__ = [
    "DEFAULT_UNKNOWN_LIMIT",
    "Given",
    "Suggestion",
    "render",
    "run_suggest",
    "suggest",
]

#: Unknown values reported per column, most frequent first.
DEFAULT_UNKNOWN_LIMIT = 50
_MONEY_COLUMNS = ("unit_price", "discount", "list_price")


@dataclass(frozen=True)
class Given:
    """What the draft gives a required canonical column no file column maps to: a ``default`` with
    why, or a blocker when nothing sensible can be given."""

    canonical: str
    value: str | None
    confidence: float
    evidence: str

    def as_dict(self) -> dict[str, object]:
        return {
            "canonical": self.canonical,
            "default": self.value,
            "confidence": round(self.confidence, 2),
            "evidence": self.evidence,
        }


@dataclass
class Suggestion:
    """Every guess about one partner's feed, from its sample files."""

    provider: str
    feed: str
    samples: list[Sample]
    profile: dict[str, Guess]
    matches: list[ColumnMatch]
    unmapped: list[str]
    given: list[Given]
    unknowns: list[Unknown]
    timezone: Guess
    currency: Guess
    kind: Guess
    blockers: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def value_map_rows(self, min_confidence: float) -> list[dict[str, str]]:
        """Source-scoped value-map rows for the unknown values whose guess is sure enough."""
        rows: dict[tuple[str, str], dict[str, str]] = {}
        for unknown in self.unknowns:
            if unknown.guess is None or unknown.confidence < min_confidence:
                continue
            rows.setdefault(
                (unknown.map, unknown.value.strip().lower()),
                {
                    "provider": self.provider,
                    "feed": self.feed,
                    "map": unknown.map,
                    "alias": unknown.value.strip(),
                    "value": unknown.guess,
                    "match": "",
                    "extra": "",
                },
            )
        return list(rows.values())

    def as_dict(self) -> dict[str, object]:
        return {
            "provider": self.provider,
            "feed": self.feed,
            "files": [s.as_dict() for s in self.samples],
            "profile": {k: g.as_dict() for k, g in self.profile.items()},
            "columns": [m.as_dict() for m in self.matches],
            "unmapped_source_columns": self.unmapped,
            "required_not_in_files": [g.as_dict() for g in self.given],
            "unknown_values": [u.as_dict() for u in self.unknowns],
            "provider_row": {
                "timezone": self.timezone.as_dict(),
                "currency": self.currency.as_dict(),
                "kind": self.kind.as_dict(),
            },
            "blockers": self.blockers,
            "notes": self.notes,
        }


def _majority(guesses: Sequence[Guess | None], what: str, notes: list[str]) -> Guess | None:
    """The value most samples agree on (their confidence scaled by the agreement); a disagreement
    is noted."""
    present = [g for g in guesses if g is not None]
    if not present:
        return None
    votes = Counter(g.value for g in present)
    value, count = votes.most_common(1)[0]
    if len(votes) > 1:
        notes.append(f"the files disagree on the {what}: {dict(votes)}; took {value!r}")
    best = max((g for g in present if g.value == value), key=lambda g: g.confidence)
    return Guess(value, best.confidence * count / len(present), best.evidence, best.blocker)


def _encoding(guesses: Sequence[Guess], notes: list[str]) -> Guess | None:
    """The encoding of the files: an ASCII-only file agrees with any, so the others decide; Windows-1252
    reads Latin-1 text alike but for control codes, so it wins over Latin-1."""
    decisive = [g for g in guesses if g.evidence != ASCII_ONLY]
    if not decisive:
        return guesses[0] if guesses else None
    values = {g.value for g in decisive}
    if values == {"cp1252", "latin-1"}:
        return next(g for g in decisive if g.value == "cp1252")
    return _majority(decisive, "encoding", notes)


def _combined(samples: Sequence[Sample]) -> dict[str, list[str | None]]:
    """Each column's values over every sample, in file order (a column a file lacks adds nothing)."""
    out: dict[str, list[str | None]] = {}
    for sample in samples:
        for name in sample.columns:
            out.setdefault(name, []).extend(sample.values[name])
    return out


def _datetime_guess(
    feed: str, matches: Sequence[ColumnMatch], samples: Sequence[Sample], values: dict[str, list[str | None]]
) -> Guess:
    source = next((m.source for m in matches if m.canonical == "ordered_at"), None)
    if feed != "sales" or source is None:
        return Guess("iso", 0.0, f"no timestamp column in a {feed} feed: the registry's default")
    if any(source in s.native_temporal for s in samples):
        return Guess("iso", 1.0, f"{source!r} holds native timestamps: bronze writes them ISO 8601 in UTC")
    near = sorted({s.business_date for s in samples if s.business_date is not None})
    guess = guess_datetime(values[source], near)
    day = guess_date(values[source]) if guess is None else None
    if day is not None:
        return Guess(
            day.value,
            day.confidence * 0.9,
            f"{source!r}: dates without a time, read as midnight in the provider's timezone: {day.evidence}",
        )
    if guess is None:
        return Guess(
            "iso",
            0.2,
            f"{source!r}'s values read as no timestamp format",
            blocker=f"{source!r} holds no readable timestamps",
        )
    return Guess(guess.value, guess.confidence, f"{source!r}: {guess.evidence}", guess.blocker)


def _date_guess(
    feed: str, matches: Sequence[ColumnMatch], datetime_format: Guess, values: dict[str, list[str | None]]
) -> Guess:
    source = next((m.source for m in matches if m.canonical == "signup_date"), None)
    if source is not None:
        guess = guess_date(values[source])
        if guess is not None:
            return Guess(guess.value, guess.confidence, f"{source!r}: {guess.evidence}")
        return Guess(
            "%Y-%m-%d",
            0.2,
            f"{source!r}'s values read as no date format",
            blocker=f"{source!r} holds no readable dates",
        )
    part = date_part(datetime_format.value)
    if part is not None:
        return Guess(part, datetime_format.confidence, "no date column: the date part of the datetime format")
    return Guess("%Y-%m-%d", 0.0, f"no date column in a {feed} feed: ISO, the registry's default")


def _money_guess(matches: Sequence[ColumnMatch], values: dict[str, list[str | None]], knowledge: Knowledge) -> Guess:
    guesses: list[tuple[str, Guess]] = []
    for match in matches:
        if match.canonical in _MONEY_COLUMNS:
            guess = guess_money(values[match.source], name_tokens(match.source, knowledge.abbreviations))
            if guess is not None:
                guesses.append((match.source, guess))
    if not guesses:
        return Guess("decimal", 0.0, "no money column mapped: the registry's default")
    specific = {"currency": 0, "decimal_comma": 1, "cents": 2}  # a format a plain decimal column also fits last
    ranked = sorted(guesses, key=lambda sg: (sg[1].blocker is None, specific.get(sg[1].value, len(specific))))
    source, guess = ranked[0]
    formats = {g.value for _, g in guesses}
    confidence = guess.confidence if len(formats) == 1 else guess.confidence * 0.7
    evidence = f"{source!r}: {guess.evidence}"
    if len(formats) > 1:
        evidence += f"; other money columns read as {sorted(formats - {guess.value})}"
    return Guess(guess.value, confidence, evidence, guess.blocker)


_CURRENCY_CODE = re.compile(r"^[A-Z]{3}$")


def _currency_codes(unmapped: Sequence[str], values: dict[str, list[str | None]]) -> Counter[str]:
    """The currency codes (with counts) of an unmapped column that holds nothing else, if any: the
    registry has no currency column, but the provider's currency is one."""
    for column in unmapped:
        filled = [v.strip() for v in values[column] if v is not None and v.strip()]
        if filled and len(filled) == sum(1 for v in filled if _CURRENCY_CODE.match(v)) and len(set(filled)) <= 5:
            return Counter(filled)
    return Counter()


def _channel_guess(matches: Sequence[ColumnMatch]) -> Guess | None:
    mapped = {m.canonical for m in matches}
    if "channel" in mapped:
        return None
    if "store_id" in mapped and "ship_state" not in mapped:
        return Guess("store", 0.8, "a store column and no ship state: store sales")
    if "ship_state" in mapped and "store_id" not in mapped:
        return Guess("online", 0.8, "a ship state and no store column: online orders")
    return Guess("store", 0.3, "no channel column, and store and ship-state columns alike: ask the partner")


def suggest(
    paths: Sequence[Path],
    provider: str,
    feed: str,
    *,
    base: Registry,
    knowledge: Knowledge,
    timezone: str | None = None,
    currency: str | None = None,
    kind: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_rows: int = DEFAULT_MAX_ROWS,
    min_confidence: float = DEFAULT_MIN_CONFIDENCE,
    unknown_limit: int = DEFAULT_UNKNOWN_LIMIT,
) -> Suggestion:
    """Every guess about ``provider``'s ``feed`` from the sample files ``paths`` (raises
    ``SampleError`` for a file that cannot be read), against the mapping tables of ``base``."""
    samples = [read_sample(path, max_bytes=max_bytes, max_rows=max_rows) for path in paths]
    notes: list[str] = [f"{s.path.name}: {note}" for s in samples for note in s.notes]
    blockers: list[str] = []
    values = _combined(samples)
    mappings = base.mappings
    matches = match_columns(feed, values, knowledge, mappings, min_confidence=min_confidence)
    mapped_sources = {m.source for m in matches}
    mapped = {m.canonical for m in matches}
    unmapped = [c for c in values if c not in mapped_sources]

    profile: dict[str, Guess] = {}
    fmt = _majority([Guess(s.format, 1.0, f"magic bytes of {s.path.name}") for s in samples], "format", notes)
    assert fmt is not None  # at least one sample
    profile["format"] = fmt
    text = [s for s in samples if s.format.startswith("csv")]
    delimiter = _majority([s.delimiter for s in text], "delimiter", notes)
    profile["delimiter"] = delimiter or Guess(",", 0.0, "not a CSV: the registry's default, unused")
    encoding = _encoding([s.encoding for s in samples if s.encoding is not None], notes)
    profile["encoding"] = encoding or Guess("utf-8", 0.0, "Parquet: no text encoding, unused")
    headers = [s.header for s in text if s.header is not None]
    if any(h.value == "false" for h in headers):
        blockers.append("a CSV without a header: bronze matches columns by their header names; ask for a header row")
    blockers.extend(f"{s.path.name}: {s.header.blocker}" for s in text if s.header is not None and s.header.blocker)
    datetime_format = _datetime_guess(feed, matches, samples, values)
    profile["datetime_format"] = datetime_format
    profile["date_format"] = _date_guess(feed, matches, datetime_format, values)
    profile["money_format"] = _money_guess(matches, values, knowledge)
    if feed == "sales":
        channel = _channel_guess(matches)
        if channel is not None:
            profile["channel"] = channel
    blockers.extend(f"{name}: {g.blocker}" for name, g in profile.items() if g.blocker)

    given: list[Given] = []
    source_of = {m.canonical: m.source for m in matches}
    for canonical in REQUIRED_COLUMNS[feed]:
        default = knowledge.defaults.get(canonical)
        if canonical in mapped:
            column = values[source_of[canonical]]
            blank = sum(1 for v in column if v is None or not v.strip())
            if blank and default is not None:  # a required value left blank: the default fills it
                said = f"{blank} of {len(column)} rows leave {source_of[canonical]!r} blank; {default[1]}"
                given.append(Given(canonical, default[0], 0.5, said))
            continue
        if default is not None:
            given.append(Given(canonical, default[0], 0.5, f"no column maps to it; {default[1]}"))
        else:
            given.append(Given(canonical, None, 0.0, "no column maps to it and nothing sensible can be given"))
            blockers.append(
                f"required column {canonical!r}: no file column maps to it (files would be missing_columns)"
            )

    unknowns = unknown_values(feed, matches, values, knowledge, mappings, limit=unknown_limit)

    tz_guess = (
        Guess("UTC", 1.0, "epoch seconds are read as wall-clock time in the provider's timezone: UTC reads them right")
        if datetime_format.value == EPOCH_SECONDS
        else Guess(timezone, 1.0, "given with --timezone")
        if timezone
        else Guess("UTC", 0.3, "not in the files; timestamps without an offset are read in it: give --timezone")
    )
    if datetime_format.value == EPOCH_SECONDS and timezone and timezone != "UTC":
        notes.append(f"--timezone {timezone} ignored: epoch seconds need the provider timezone UTC")
    symbols = Counter(
        symbol
        for m in matches
        if m.canonical in _MONEY_COLUMNS
        for v in values[m.source]
        if v
        for symbol in "$€£"
        if symbol in v
    )
    codes = _currency_codes(unmapped, values)
    if len(codes) > 1:
        blockers.append(
            f"amounts in several currencies ({', '.join(f'{c} x{n}' for c, n in codes.most_common())}):"
            " the registry gives one currency per provider; ask for one file per currency"
        )
    if currency:
        currency_guess = Guess(currency, 1.0, "given with --currency")
    elif len(codes) == 1:
        code = next(iter(codes))
        currency_guess = Guess(code, 0.9, f"a column of currency codes says {code}")
    elif symbols and set(symbols) != {"$"}:
        currency_guess = Guess("USD", 0.2, f"symbols {dict(symbols)} in the amounts: give --currency")
    else:
        currency_guess = Guess(
            "USD", 0.9 if symbols else 0.6, "$ in the amounts" if symbols else "no symbol: the platform's default"
        )
    if currency_guess.value not in mappings.usd_per_unit:
        blockers.append(f"currency {currency_guess.value!r} has no USD rate in mappings/fx_rates.csv")
    channel_value = profile.get("channel")
    kind_guess = (
        Guess(kind, 1.0, "given with --kind")
        if kind
        else Guess("ecommerce", 0.6, "online orders")
        if channel_value is not None and channel_value.value == "online"
        else Guess("retail", 0.4, "the most common kind: give --kind")
    )
    return Suggestion(
        provider=provider,
        feed=feed,
        samples=samples,
        profile=profile,
        matches=matches,
        unmapped=unmapped,
        given=given,
        unknowns=unknowns,
        timezone=tz_guess,
        currency=currency_guess,
        kind=kind_guess,
        blockers=blockers,
        notes=notes,
    )


def _line(guess: Guess) -> str:
    text = f"{guess.value!r}  ({guess.confidence:.2f}) {guess.evidence}"
    return text + (f"\n      BLOCKER: {guess.blocker}" if guess.blocker else "")


def render(suggestion: Suggestion, draft: Draft | None, min_confidence: float = DEFAULT_MIN_CONFIDENCE) -> str:
    """The report a person reads: every guess with its confidence and evidence."""
    out: list[str] = [
        f"Suggestion for {suggestion.provider}/{suggestion.feed} (confidence 0..1, evidence)",
        "",
        "Files:",
    ]
    for sample in suggestion.samples:
        parts = [sample.format, f"{sample.rows} records" + ("" if sample.complete else " (a sample of the file)")]
        if sample.encoding:
            parts.append(f"encoding {sample.encoding.value}")
        if sample.delimiter:
            parts.append(f"delimiter {sample.delimiter.value!r}")
        if sample.header:
            parts.append(f"header {'yes' if sample.header.value == 'true' else 'NO'}")
        if sample.quoting:
            parts.append(f"quoting {sample.quoting}")
        if sample.line_ends:
            parts.append(f"line ends {sample.line_ends}")
        out.append(f"  {sample.path.name}: " + "; ".join(parts))
    out += ["", "Profile:"]
    out += [f"  {key:<16}{_line(guess)}" for key, guess in suggestion.profile.items()]
    out += ["", "Columns (source -> canonical):"]
    out += [f"  {m.source!r:<22} -> {m.canonical:<13} ({m.confidence:.2f}) {m.evidence}" for m in suggestion.matches]
    if suggestion.unmapped:
        out.append(f"  not mapped (dropped by bronze): {', '.join(repr(c) for c in suggestion.unmapped)}")
    for given in suggestion.given:
        if given.value is not None:
            out.append(
                f"  required {given.canonical!r}: default {given.value!r} ({given.confidence:.2f}) {given.evidence}"
            )
        else:
            out.append(f"  required {given.canonical!r}: MISSING, {given.evidence}")
    mapped_vocab = [m for m in suggestion.matches if m.canonical in MAPPED_COLUMNS]
    out += ["", "Values the mapping tables do not know:"]
    if not suggestion.unknowns:
        checked = ", ".join(m.canonical for m in mapped_vocab) or "no mapped column"
        out.append(f"  none ({checked} checked)")
    for unknown in suggestion.unknowns:
        written = "" if unknown.confidence >= min_confidence else ", not written"
        target = f"-> {unknown.guess!r} ({unknown.confidence:.2f}{written})" if unknown.guess else "-> ? (no guess)"
        out.append(f"  {unknown.canonical} {unknown.value!r} x{unknown.count} {target} {unknown.evidence}")
        if unknown.effect and (unknown.guess is None or unknown.confidence < min_confidence):
            out.append(f"      unmapped, {unknown.effect}")
    out += [
        "",
        "Provider row:",
        f"  timezone  {_line(suggestion.timezone)}",
        f"  currency  {_line(suggestion.currency)}",
        f"  kind      {_line(suggestion.kind)}",
    ]
    if suggestion.notes:
        out += ["", "Notes:"] + [f"  - {n}" for n in suggestion.notes]
    out += ["", "Blockers:" if suggestion.blockers else "Blockers: none"]
    out += [f"  - {b}" for b in suggestion.blockers]
    if draft is not None:
        out += ["", f"Draft written to {draft.out}: " + ", ".join(f.name for f in draft.files)]
        out.append(f"  feeds in the draft: {', '.join(draft.feeds)}")
        out += [f"  - {note}" for note in draft.notes]
        if draft.issues:
            out.append(f"  the base registry plus the draft does NOT load ({len(draft.issues)} problems):")
            out += [f"    - {issue}" for issue in draft.issues]
        else:
            out.append(f"  the base registry plus the draft loads: {draft.registry_dir}")
            files = " ".join(shlex.quote(str(sample.path)) for sample in suggestion.samples)
            days = {s.business_date for s in suggestion.samples if s.business_date is not None}
            out.append(
                f"  next: resight onboard preview {files} --registry {shlex.quote(str(draft.registry_dir))}"
                f" --provider {suggestion.provider} --feed {suggestion.feed}"
                + (f" --date {days.pop().isoformat()}" if len(days) == 1 else "")
            )
    return "\n".join(out) + "\n"


def run_suggest(args: argparse.Namespace) -> int:
    """``resight onboard suggest`` (its parser is in ``onboard/cli.py``): the report on stdout, the
    draft in ``--out``. Exit 0; 2 when a file cannot be read or the arguments are wrong."""
    provider, feed = args.provider, args.feed
    min_confidence = DEFAULT_MIN_CONFIDENCE if args.min_confidence is None else args.min_confidence
    if feed not in FEEDS:
        print(f"error: --feed {feed!r} is not one of {', '.join(FEEDS)}", file=sys.stderr)
        return 2
    if args.kind is not None and args.kind not in KINDS:
        print(f"error: --kind {args.kind!r} is not one of {', '.join(KINDS)}", file=sys.stderr)
        return 2
    if not PROVIDER_PATTERN.fullmatch(provider):
        print(f"error: --provider {provider!r} is not a valid slug {PROVIDER_PATTERN.pattern}", file=sys.stderr)
        return 2
    base_dir = Path(args.registry) if args.registry else DEFAULT_REGISTRY_DIR
    try:
        base = load_registry(base_dir)
    except (RegistryError, OSError) as exc:
        print(f"error: the base registry {base_dir} does not load: {exc}", file=sys.stderr)
        return 2
    if provider in base.providers:
        print(
            f"error: {provider!r} is already in {base_dir}/providers.csv: suggest drafts a new partner", file=sys.stderr
        )
        return 2
    try:
        knowledge = load_knowledge(Path(args.knowledge) if args.knowledge else DEFAULT_KNOWLEDGE, base.mappings)
        result = suggest(
            [Path(p) for p in args.files],
            provider,
            feed,
            base=base,
            knowledge=knowledge,
            timezone=args.timezone,
            currency=args.currency,
            kind=args.kind,
            max_bytes=args.max_bytes or DEFAULT_MAX_BYTES,
            max_rows=args.max_rows or DEFAULT_MAX_ROWS,
            min_confidence=min_confidence,
        )
    except SampleError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    draft = None
    if args.out:
        try:
            draft = write_draft(
                result,
                Path(args.out),
                base_dir=base_dir,
                base=base,
                name=args.name or provider.replace("_", " ").title(),
                every_hours=args.every_hours,
                min_confidence=min_confidence,
            )
        except DraftError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    if args.json:
        payload = result.as_dict()
        payload["draft"] = draft.as_dict() if draft else None
        print(json.dumps(payload, indent=2, ensure_ascii=False))
    else:
        sys.stdout.write(render(result, draft, min_confidence))
    return 0
