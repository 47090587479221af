"""A suggestion written as draft registry files, feed by feed, and checked by the registry loader.

``--out DIR`` holds one partner's draft: ``profiles.yaml`` (one profile, each guess commented with
its confidence and evidence), ``providers.csv``, ``sources.csv`` and ``value_maps.csv`` rows, in
the formats the registry loads. A partner's feeds are suggested one run each into the same
directory: a later run adds its feed's layout, source row and value maps to the draft and keeps the
others. A profile has one delimiter, encoding, date and money format: when a feed's files disagree
with the draft's, the surer guess is kept and the disagreement reported; a feed whose files are in
another format gets its own ``format`` in ``sources.csv``.

``DIR/registry`` is the base registry with the draft merged in, loaded by ``load_registry`` before
the command ends, ready for ``resight onboard preview --registry DIR/registry``.
"""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from resight_platform.onboard.columns import DEFAULT_MIN_CONFIDENCE
from resight_platform.onboard.sniff import Guess
from resight_platform.sources.registry import Registry, RegistryError, RegistryIssue, load_registry
from resight_platform.sources.value_maps import VALUE_MAPS_FILE

if TYPE_CHECKING:  # suggest.py writes drafts with this module
    from resight_platform.onboard.suggest import Suggestion

__all__ = ["CONFLICT_CONFIDENCE", "Draft", "DraftError", "profile_yaml", "write_draft"]

#: Two feeds' guesses of one profile field that disagree are a conflict when both are this sure.
CONFLICT_CONFIDENCE = 0.8
_PROVIDER_HEADER = ("provider", "name", "kind", "profile", "timezone", "currency", "history_start")
_SOURCE_HEADER = ("provider", "feed", "format", "expected_every_hours", "active")
_VALUE_MAP_HEADER = ("provider", "feed", "map", "alias", "value", "match", "extra")
_HEAD = "# Drafted by `resight onboard suggest`; each guess is commented with its confidence (0..1) and evidence."
_FROM = re.compile(r"^# ([a-z]+) from (.*)$")
_NAME = re.compile(r'^  ("(?:[^"\\]|\\.)*"):$')
_LEVEL = re.compile(r'^    ([a-z_]+): ("(?:[^"\\]|\\.)*")(?:  # ([0-9.]+): (.*))?$')
_FEED = re.compile(r"^      ([a-z]+):$")


class DraftError(ValueError):
    """The ``--out`` directory holds something else than this partner's draft."""


@dataclass
class Draft:
    """The files a suggestion wrote, what the registry loader said of the merged registry, and how
    the feed joined an earlier draft."""

    out: Path
    files: list[Path]
    registry_dir: Path
    issues: list[RegistryIssue]
    feeds: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {
            "out": str(self.out),
            "files": [str(f) for f in self.files],
            "feeds": self.feeds,
            "registry": str(self.registry_dir),
            "loads": not self.issues,
            "issues": [str(i) for i in self.issues],
            "notes": self.notes,
        }


def _scalar(value: str) -> str:
    """A YAML scalar that reads back as exactly ``value`` (JSON's string syntax is YAML's)."""
    return json.dumps(value, ensure_ascii=False)


def _comment(confidence: float, evidence: str) -> str:
    return f"  # {confidence:.2f}: " + evidence.replace("\n", " ")


def _feed_block(suggestion: Suggestion) -> list[str]:
    """The lines of the profile's layout of the suggestion's feed."""
    lines = [f"      {suggestion.feed}:", "        columns:"]
    lines += [
        f"          {_scalar(m.source)}: {_scalar(m.canonical)}" + _comment(m.confidence, m.evidence)
        for m in suggestion.matches
    ]
    defaults = [g for g in suggestion.given if g.value is not None]
    if defaults:
        lines.append("        defaults:")
        lines += [
            f"          {g.canonical}: {_scalar(g.value or '')}" + _comment(g.confidence, g.evidence) for g in defaults
        ]
    return lines


def _render(name: str, sources: dict[str, str], level: dict[str, Guess], blocks: dict[str, list[str]]) -> str:
    lines = [_HEAD, *(f"# {feed} from {files}" for feed, files in sources.items()), "profiles:", f"  {_scalar(name)}:"]
    lines += [f"    {key}: {_scalar(g.value)}" + _comment(g.confidence, g.evidence) for key, g in level.items()]
    lines.append("    feeds:")
    for block in blocks.values():
        lines += block
    return "\n".join(lines) + "\n"


def profile_yaml(suggestion: Suggestion, name: str) -> str:
    """The suggestion's profile as a ``profiles.yaml`` fragment, each guess commented."""
    files = ", ".join(s.path.name for s in suggestion.samples)
    return _render(name, {suggestion.feed: files}, dict(suggestion.profile), {suggestion.feed: _feed_block(suggestion)})


@dataclass
class _Earlier:
    """A draft already in ``--out``: its profile parsed back from the lines ``_render`` wrote."""

    name: str
    sources: dict[str, str]
    level: dict[str, Guess]
    blocks: dict[str, list[str]]
    provider_row: dict[str, str] | None
    source_rows: list[dict[str, str]]
    value_rows: list[dict[str, str]]


def _rows(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        return []
    return [dict(row) for row in csv.DictReader(io.StringIO(path.read_text(encoding="utf-8")))]


def _read_earlier(out: Path, provider: str) -> _Earlier | None:
    providers = _rows(out / "providers.csv")
    others = sorted({r.get("provider", "") for r in providers} - {provider})
    if others:
        raise DraftError(f"{out} holds the draft of {others[0]!r}: give {provider!r} its own --out directory")
    profile_file = out / "profiles.yaml"
    if not providers or not profile_file.is_file():
        return None
    name, sources, level, blocks, feed = "", {}, {}, {}, None
    for line in profile_file.read_text(encoding="utf-8").splitlines():
        if (match := _FROM.match(line)) is not None:
            sources[match.group(1)] = match.group(2)
        elif (match := _NAME.match(line)) is not None:
            name = json.loads(match.group(1))
        elif (match := _FEED.match(line)) is not None:
            feed = match.group(1)
            blocks[feed] = [line]
        elif feed is not None:
            blocks[feed].append(line)
        elif (match := _LEVEL.match(line)) is not None:
            confidence = float(match.group(3)) if match.group(3) else 1.0
            level[match.group(1)] = Guess(json.loads(match.group(2)), confidence, match.group(4) or "written by hand")
    if not name:
        raise DraftError(f"{profile_file} is not a draft profile this command wrote: give another --out directory")
    return _Earlier(
        name=name,
        sources=sources,
        level=level,
        blocks=blocks,
        provider_row=next((r for r in providers if r.get("provider") == provider), None),
        source_rows=_rows(out / "sources.csv"),
        value_rows=_rows(out / VALUE_MAPS_FILE),
    )


def _merge_level(
    feed: str, earlier: dict[str, Guess], new: dict[str, Guess], source_row: dict[str, str], notes: list[str]
) -> dict[str, Guess]:
    """The profile-level guesses of the draft with the feed's joined: the surer one of each field."""
    merged = dict(earlier)
    for key, guess in new.items():
        old = earlier.get(key)
        if old is None or (old.value == guess.value and guess.confidence > old.confidence):
            merged[key] = guess
        elif old.value == guess.value:
            continue
        elif key == "format":
            source_row["format"] = guess.value
            notes.append(
                f"the {feed} files are {guess.value}, the profile's {old.value}: sources.csv gives {feed} its own"
            )
        else:
            kept = guess if guess.confidence > old.confidence else old
            merged[key] = kept
            if min(guess.confidence, old.confidence) >= CONFLICT_CONFIDENCE:
                notes.append(
                    f"CONFLICT: the {feed} files' {key} is {guess.value!r} ({guess.confidence:.2f}), the draft's"
                    f" {old.value!r} ({old.confidence:.2f}); a profile has one {key}: kept {kept.value!r}"
                )
    return merged


def _csv_text(header: Sequence[str], rows: Sequence[dict[str, str]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(header), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def _append_csv(path: Path, header: Sequence[str], rows: Sequence[dict[str, str]]) -> None:
    """Append ``rows`` to the registry CSV at ``path`` in its own header's order (or create it)."""
    if not rows:
        return
    if not path.exists():
        path.write_text(_csv_text(header, rows), encoding="utf-8")
        return
    text = path.read_text(encoding="utf-8-sig")
    columns = next(csv.reader(io.StringIO(text)), list(header))
    body = _csv_text(columns, rows).split("\n", 1)[1]
    path.write_text(text + ("" if text.endswith("\n") or not text else "\n") + body, encoding="utf-8")


def write_draft(
    suggestion: Suggestion,
    out: Path,
    *,
    base_dir: Path,
    base: Registry,
    name: str,
    every_hours: int,
    min_confidence: float = DEFAULT_MIN_CONFIDENCE,
) -> Draft:
    """Write (or extend) the partner's draft in ``out`` with the suggestion's feed, merge it into a
    copy of the base registry at ``base_dir`` (``out/registry``) and load that with the registry
    loader. Raises ``DraftError`` when ``out`` holds another partner's draft."""
    provider, feed = suggestion.provider, suggestion.feed
    earlier = _read_earlier(out, provider)
    notes: list[str] = []
    source_row = {
        "provider": provider,
        "feed": feed,
        "format": "",
        "expected_every_hours": str(every_hours),
        "active": "true",
    }
    new_level = dict(suggestion.profile)
    if earlier is None:
        profile_name = provider if provider not in base.profiles else f"{provider}_draft"
        level, sources, blocks = new_level, {}, {}
        provider_row = {
            "provider": provider,
            "name": name,
            "kind": suggestion.kind.value,
            "profile": profile_name,
            "timezone": suggestion.timezone.value,
            "currency": suggestion.currency.value,
            "history_start": "",
        }
        source_rows: list[dict[str, str]] = []
        value_rows: list[dict[str, str]] = []
    else:
        profile_name, sources, blocks = earlier.name, dict(earlier.sources), dict(earlier.blocks)
        level = _merge_level(feed, earlier.level, new_level, source_row, notes)
        provider_row = dict(earlier.provider_row or {})
        provider_row.setdefault("provider", provider)
        provider_row["profile"] = profile_name
        for column, guess in (
            ("timezone", suggestion.timezone),
            ("currency", suggestion.currency),
            ("kind", suggestion.kind),
        ):
            if guess.confidence >= CONFLICT_CONFIDENCE and provider_row.get(column) != guess.value:
                notes.append(f"provider {column}: {provider_row.get(column)!r} -> {guess.value!r} ({guess.evidence})")
                provider_row[column] = guess.value
        source_rows = [r for r in earlier.source_rows if r.get("feed") != feed]
        value_rows = [r for r in earlier.value_rows if r.get("feed") != feed]
    sources[feed] = ", ".join(s.path.name for s in suggestion.samples)
    blocks[feed] = _feed_block(suggestion)
    source_rows.append(source_row)
    value_rows += suggestion.value_map_rows(min_confidence)
    profile_text = _render(profile_name, sources, level, blocks)

    out.mkdir(parents=True, exist_ok=True)
    written = {
        "profiles.yaml": profile_text,
        "providers.csv": _csv_text(_PROVIDER_HEADER, [provider_row]),
        "sources.csv": _csv_text(_SOURCE_HEADER, source_rows),
    }
    if value_rows:
        written[VALUE_MAPS_FILE] = _csv_text(_VALUE_MAP_HEADER, value_rows)
    elif (out / VALUE_MAPS_FILE).exists():
        (out / VALUE_MAPS_FILE).unlink()
    files: list[Path] = []
    for file_name, text in written.items():
        (out / file_name).write_text(text, encoding="utf-8")
        files.append(out / file_name)

    merged = out / "registry"
    if merged.exists():
        shutil.rmtree(merged)
    shutil.copytree(base_dir, merged)
    document = yaml.safe_load((merged / "profiles.yaml").read_text(encoding="utf-8")) or {}
    document.setdefault("profiles", {}).update(yaml.safe_load(profile_text)["profiles"])
    (merged / "profiles.yaml").write_text(
        yaml.safe_dump(document, sort_keys=False, allow_unicode=True), encoding="utf-8"
    )
    _append_csv(merged / "providers.csv", _PROVIDER_HEADER, [provider_row])
    _append_csv(merged / "sources.csv", _SOURCE_HEADER, source_rows)
    _append_csv(merged / VALUE_MAPS_FILE, _VALUE_MAP_HEADER, value_rows)
    try:
        load_registry(merged, history_floor=base.history_floor)
        issues: list[RegistryIssue] = []
    except RegistryError as exc:
        issues = exc.issues
    return Draft(out=out, files=files, registry_dir=merged, issues=issues, feeds=list(blocks), notes=notes)
