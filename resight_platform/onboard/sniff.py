"""What a partner's sample file is: its format (by magic bytes, checked against its extension), its
text encoding decided from the bytes, its CSV dialect (delimiter, header, quoting, line ends), and
its first records as text, the way bronze will see them.

Only a bounded head of each file is read (``max_bytes`` of decompressed text, ``max_rows``
records): a sample is for guessing, and a stranger's file may be any size.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import json
import re
import zlib
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import polars as pl

from resight_platform.sources.landing import file_format

__all__ = [
    "ASCII_ONLY",
    "BINARY_SHARE",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_ROWS",
    "DELIMITERS",
    "PREAMBLE_ROWS",
    "SPACE_ALIGNED",
    "SPACE_ALIGNED_SHARE",
    "Guess",
    "Sample",
    "SampleError",
    "business_date",
    "guess_encoding",
    "read_sample",
]

#: How much of a file (decompressed) and how many records a sample holds by default.
DEFAULT_MAX_BYTES = 4 * 1024 * 1024
DEFAULT_MAX_ROWS = 5_000
#: A text whose share of control characters (not tab or a line end) passes this is binary data.
BINARY_SHARE = 0.01
_CONTROLS = frozenset(chr(c) for c in [*range(0x20), 0x7F]) - {"\t", "\r", "\n"}
#: The evidence of an encoding guessed for text that any of them reads.
ASCII_ONLY = "ASCII only: UTF-8, Latin-1 and Windows-1252 all read it the same"
#: The delimiters a CSV is tried with, in the order a tie is broken.
DELIMITERS: tuple[str, ...] = (",", ";", "\t", "|")
#: Records the dialect is judged on.
_DIALECT_ROWS = 200
#: When no delimiter splits the lines, the share of records that runs of spaces must split into
#: the same number (> 1) of fields for the file to be taken as space-aligned (a fixed-width export).
SPACE_ALIGNED_SHARE = 0.9
#: Why bronze cannot read a space-aligned file: the blocker on its delimiter guess.
SPACE_ALIGNED = (
    "fields are aligned with runs of spaces (a fixed-width export): bronze reads a one-character"
    " delimiter, and with a space every extra space is an empty field; ask for a comma-separated file"
)
#: How many lines before the header a file may carry (a title, a '# source' comment) and still
#: have its header found.
PREAMBLE_ROWS = 10

_GZIP = b"\x1f\x8b"
_PARQUET = b"PAR1"
#: Bytes Windows-1252 prints (curly quotes, dashes, the euro sign) and Latin-1 reads as control
#: codes; 0x81, 0x8D, 0x8F, 0x90 and 0x9D are undefined in Windows-1252.
_CP1252_ONLY = frozenset(range(0x80, 0xA0)) - {0x81, 0x8D, 0x8F, 0x90, 0x9D}
_ISO_DAY = re.compile(r"(?<!\d)(\d{4}-\d{2}-\d{2})(?!\d)")
_NUMBERISH = re.compile(r"^[-+$€£]?\s?[\d.,:/ -]+%?$")


class SampleError(Exception):
    """A sample file that cannot be read; the message names the file and the reason."""

    def __init__(self, path: Path, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")


@dataclass(frozen=True)
class Guess:
    """One guess: the value a registry file would hold, how sure (0..1), and why. ``blocker`` says
    why no value the registry accepts would read the data right (the guess is then the safest
    spelling: rows it cannot read are quarantined, never loaded wrong)."""

    value: str
    confidence: float
    evidence: str
    blocker: str | None = None

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "value": self.value,
            "confidence": round(self.confidence, 2),
            "evidence": self.evidence,
        }
        if self.blocker:
            out["blocker"] = self.blocker
        return out


@dataclass
class Sample:
    """The head of one sample file: what it is and its records as text (None: empty or null)."""

    path: Path
    #: The registry's spelling of the file's format (``csv``, ``csv.gz``, ``jsonl``, ``json``,
    #: ``parquet``).
    format: str
    columns: list[str]
    values: dict[str, list[str | None]]
    encoding: Guess | None = None
    delimiter: Guess | None = None
    header: Guess | None = None
    quoting: str | None = None
    line_ends: str | None = None
    #: Columns whose values are native timestamps (Parquet): bronze writes them ISO 8601 in UTC.
    native_temporal: set[str] = field(default_factory=set)
    #: The business date of the landing key the file sits under (``…/YYYY-MM-DD/name``) or in its
    #: name, when there is one: where a sale's timestamps should lie.
    business_date: date | None = None
    #: The whole file was read (not cut at ``max_bytes`` or ``max_rows``).
    complete: bool = True
    notes: list[str] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return len(next(iter(self.values.values()), []))

    def as_dict(self) -> dict[str, object]:
        return {
            "path": str(self.path),
            "format": self.format,
            "rows_sampled": self.rows,
            "complete": self.complete,
            "business_date": self.business_date.isoformat() if self.business_date else None,
            "columns": self.columns,
            "encoding": self.encoding.as_dict() if self.encoding else None,
            "delimiter": self.delimiter.as_dict() if self.delimiter else None,
            "header": self.header.as_dict() if self.header else None,
            "quoting": self.quoting,
            "line_ends": self.line_ends,
            "notes": self.notes,
        }


def read_sample(path: Path, *, max_bytes: int = DEFAULT_MAX_BYTES, max_rows: int = DEFAULT_MAX_ROWS) -> Sample:
    """Read the head of ``path``; raises ``SampleError`` when it cannot be read at all."""
    try:
        with path.open("rb") as handle:
            head = handle.read(max_bytes + 1)
    except OSError as exc:
        raise SampleError(path, f"cannot be read: {exc.strerror or exc}") from exc
    said = file_format(path.name)
    notes: list[str] = []
    compressed = head.startswith(_GZIP)
    if compressed:
        head = _gunzip_head(path, max_bytes)
    complete = len(head) <= max_bytes
    head = head[:max_bytes]
    if head.startswith(_PARQUET):
        if compressed:
            raise SampleError(path, "a gzip-compressed Parquet file: bronze reads Parquet uncompressed only")
        sample = _parquet_sample(path, max_rows)
        kind = "parquet"
    else:
        encoding = guess_encoding(head, complete)
        text = head.decode(encoding.value, errors="replace").removeprefix("\ufeff")
        controls = sum(1 for ch in text if ch in _CONTROLS)
        if controls > BINARY_SHARE * len(text):  # a NUL in a value is one row's problem, not this
            raise SampleError(
                path,
                f"{controls} control bytes in {len(text)} characters: binary data, not text (bronze dead-letters it)",
            )
        text_start = text.lstrip(" \t\r\n").encode("utf-8")
        if not text_start:
            raise SampleError(path, "empty or white space only: nothing to suggest from")
        if not complete and not text_start.startswith(b"["):  # the last line may be cut anywhere
            text = text[: max(text.rfind("\n"), 0)]
        if text_start[:1] in (b"[", b"{"):
            kind, sample = _json_sample(path, text, said, complete, max_rows)
        else:
            kind, sample = "csv", _csv_sample(path, text, max_rows)
        sample.encoding = encoding
    registry_format = kind + (".gz" if compressed and kind == "csv" else "")
    landed = kind + (".gz" if compressed else "")  # the extension bronze reads these bytes by
    if compressed and kind != "csv":
        notes.append(f"gzip-compressed {kind}: the registry's format is {kind}; land it as .{landed}")
    if said is None:
        notes.append(f"the extension is none bronze knows; land the file as .{landed}")
    elif said != landed:
        notes.append(
            f"the name says {said} but the bytes are {landed}: bronze dead-letters such a file"
            f" (format_mismatch); land it as .{landed}"
        )
    sample.format = registry_format
    sample.business_date = business_date(path)
    sample.complete = sample.complete and complete
    sample.notes = notes + sample.notes
    return sample


def business_date(path: Path) -> date | None:
    """The ``YYYY-MM-DD`` of the file's landing-key folder, else the first in its name."""
    for text in (path.parent.name, path.name):
        for found in _ISO_DAY.findall(text):
            try:
                return date.fromisoformat(found)
            except ValueError:
                continue
    return None


def _gunzip_head(path: Path, max_bytes: int) -> bytes:
    try:
        with gzip.open(path, "rb") as handle:
            return handle.read(max_bytes + 1)
    except (OSError, EOFError, zlib.error) as exc:
        raise SampleError(path, f"starts as gzip but does not decompress: {exc}") from exc


def guess_encoding(data: bytes, complete: bool = True) -> Guess:
    """The encoding of text ``data`` in the registry's spelling, decided from the bytes: UTF-16 by
    its byte-order mark, UTF-8 (with or without a byte-order mark, which bronze drops), else
    Windows-1252 when a byte only it prints occurs, else Latin-1. ``complete``: ``data`` is the
    whole file (else a character cut at its end is not held against UTF-8)."""
    if data.startswith(codecs.BOM_UTF8):
        return Guess("utf-8", 1.0, "UTF-8 byte-order mark (utf-8-sig; bronze drops the mark)")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return Guess("utf-16", 1.0, "UTF-16 byte-order mark (as Excel's 'Unicode text' writes)")
    try:
        codecs.getincrementaldecoder("utf-8")().decode(data, final=complete)
    except UnicodeDecodeError as exc:
        position = exc.start
        special = sorted({b for b in data if b in _CP1252_ONLY})
        if special:
            shown = ", ".join(f"0x{b:02X} {bytes([b]).decode('cp1252')!r}" for b in special[:4])
            return Guess(
                "cp1252",
                0.85,
                f"not UTF-8 (byte 0x{data[position]:02X} at {position}); bytes Windows-1252 prints and"
                f" Latin-1 does not: {shown}",
            )
        accented = sum(1 for b in data if b >= 0xA0)
        return Guess(
            "latin-1",
            0.85,
            f"not UTF-8 (byte 0x{data[position]:02X} at {position}); {accented} bytes of Latin-1's upper half"
            " and none Windows-1252 alone prints",
        )
    non_ascii = sum(1 for b in data if b >= 0x80)
    if non_ascii:
        return Guess("utf-8", 1.0, f"valid UTF-8 with {non_ascii} bytes of multi-byte characters")
    return Guess("utf-8", 0.9, ASCII_ONLY)


def _line_ends(text: str) -> str:
    crlf = text.count("\r\n")
    cr = text.count("\r") - crlf
    lf = text.count("\n") - crlf
    ends = [f"{n} {name}" for n, name in ((crlf, "CRLF"), (lf, "LF"), (cr, "CR")) if n]
    return ", ".join(ends) or "a single line"


def _records(text: str, delimiter: str, limit: int | None) -> list[list[str]]:
    """The CSV records of ``text`` (any line ends; blank lines skipped), up to ``limit``."""
    normal = text.replace("\r\n", "\n").replace("\r", "\n")
    out: list[list[str]] = []
    reader = csv.reader(io.StringIO(normal, newline=""), delimiter=delimiter, quotechar='"', strict=False)
    try:
        for record in reader:
            if any(cell.strip() for cell in record):
                out.append(record)
                if limit is not None and len(out) >= limit:
                    break
    except csv.Error:
        pass  # a malformed record ends the sample; what came before still counts
    return out


def _spaced_records(text: str, limit: int | None) -> list[list[str]]:
    """The records of a space-aligned ``text``: each non-blank line split on runs of white space."""
    out: list[list[str]] = []
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        cells = line.split()
        if cells:
            out.append(cells)
            if limit is not None and len(out) >= limit:
                break
    return out


def _space_aligned(text: str) -> Guess | None:
    """The guess for a file whose fields are separated by runs of spaces, or None when they are not."""
    records = _spaced_records(text, _DIALECT_ROWS)
    widths = Counter(len(r) for r in records)
    if not widths:
        return None
    width, count = widths.most_common(1)[0]
    share = count / len(records)
    if width < 2 or share < SPACE_ALIGNED_SHARE:
        return None
    evidence = f"no delimiter splits the lines, but runs of spaces do: {width} fields in {share:.0%} of the first"
    return Guess(",", share, f"{evidence} {len(records)} records", SPACE_ALIGNED)


def _guess_delimiter(text: str) -> tuple[Guess, list[list[str]]]:
    best: tuple[float, int, str, list[list[str]]] | None = None
    for order, delimiter in enumerate(DELIMITERS):
        records = _records(text, delimiter, _DIALECT_ROWS)
        widths = Counter(len(r) for r in records)
        if not widths:
            continue
        width, count = widths.most_common(1)[0]
        share = count / len(records) if width > 1 else 0.0
        key = (share, width, -order)
        if best is None or key > (best[0], best[1], -DELIMITERS.index(best[2])):
            best = (share, width, delimiter, records)
    if best is None or best[0] == 0:
        spaced = _space_aligned(text)
        if spaced is not None:
            return spaced, _spaced_records(text, None)
        return Guess(",", 0.2, "no delimiter splits the lines into columns: one column?"), _records(text, ",", None)
    share, width, delimiter, records = best
    shown = {"\t": "tab", ",": "comma", ";": "semicolon", "|": "pipe"}[delimiter]
    return (
        Guess(delimiter, share, f"{shown}: {width} fields in {share:.0%} of the first {len(records)} records"),
        records,
    )


def _looks_like_data(cell: str) -> bool:
    return bool(_NUMBERISH.match(cell.strip())) if cell.strip() else False


def _guess_header(first: list[str], rest: list[list[str]]) -> Guess:
    """Whether ``first`` is a header: header cells are distinct non-empty names, never numbers,
    dates or money, and some column's data is typed where its first cell is not."""
    cells = [c.strip() for c in first]
    if any(_looks_like_data(c) for c in cells):
        data = [c for c in cells if _looks_like_data(c)][:2]
        return Guess("false", 0.9, f"the first record holds values, not names: {data}")
    if len(set(cells)) < len(cells) or not all(cells):
        return Guess("false", 0.6, "the first record's cells are not distinct non-empty names")
    typed = [
        cells[i]
        for i in range(len(cells))
        if rest and sum(1 for r in rest if i < len(r) and _looks_like_data(r[i])) > len(rest) / 2
    ]
    if typed:
        return Guess("true", 0.95, f"names over typed data (e.g. {typed[0]!r} over numbers or dates)")
    return Guess("true", 0.6, "distinct text names, but every column is text: cannot tell from types")


def _preamble(records: list[list[str]]) -> int:
    """How many records come before the header: lines narrower than the records (a title, a
    '# source' comment) followed by one of the records' width that reads as a header; 0 if none."""
    width = Counter(len(r) for r in records[:_DIALECT_ROWS]).most_common(1)[0][0]
    for i, record in enumerate(records[: PREAMBLE_ROWS + 1]):
        if len(record) >= width:
            following = records[i + 1 : i + 1 + _DIALECT_ROWS]
            return i if i and _guess_header(record, following).value == "true" else 0
    return 0


def _csv_sample(path: Path, text: str, max_rows: int) -> Sample:
    delimiter, _ = _guess_delimiter(text)
    spaced = delimiter.blocker == SPACE_ALIGNED
    records = _spaced_records(text, max_rows + 1) if spaced else _records(text, delimiter.value, max_rows + 1)
    if not records:
        raise SampleError(path, "no records")
    skipped = _preamble(records)
    preamble, records = records[:skipped], records[skipped:]
    header = _guess_header(records[0], records[1:])
    if preamble:
        shown = delimiter.value.join(preamble[0])
        header = Guess(
            header.value,
            header.confidence,
            f"{header.evidence}; after {len(preamble)} narrower line(s) before it",
            f"{len(preamble)} line(s) before the header (e.g. {shown[:60]!r}): bronze takes the first line"
            " for the header; ask for the file without them",
        )
    notes: list[str] = []
    if header.value == "true":
        columns = [c for c in records[0]]
        body = records[1:]
    else:
        columns = [f"column_{i + 1}" for i in range(len(records[0]))]
        body = records
    seen: Counter[str] = Counter()
    unique: list[str] = []
    for name in columns:
        seen[name] += 1
        unique.append(name if seen[name] == 1 else f"{name}_{seen[name]}")
    values: dict[str, list[str | None]] = {name: [] for name in unique}
    ragged = 0
    for record in body:
        ragged += len(record) != len(unique)
        for i, name in enumerate(unique):
            cell = record[i] if i < len(record) else ""
            values[name].append(cell if cell != "" else None)
    if ragged:
        notes.append(f"{ragged} records have another number of fields than the header's {len(unique)}")
    raw_lines = text[:65536]
    quoted = bool(re.search(rf'(^|[{re.escape(delimiter.value)}\n])"', raw_lines))
    single = bool(
        re.search(rf"(^|[{re.escape(delimiter.value)}\n])'[^']*'([{re.escape(delimiter.value)}\r\n]|$)", raw_lines)
    )
    quoting = 'double quotes ("…", as bronze reads them)' if quoted else "none"
    if single and not quoted:
        notes.append("fields look quoted with single quotes: bronze reads only double quotes, so the quotes stay")
    return Sample(
        path=path,
        format="csv",
        columns=unique,
        values=values,
        delimiter=delimiter,
        header=header,
        quoting=quoting,
        line_ends=_line_ends(text),
        complete=len(body) < max_rows,
        notes=notes,
    )


def _as_cell(value: object) -> str | None:
    """A JSON value as bronze's text: null, text as is, booleans lower case, numbers as written."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def _json_sample(path: Path, text: str, said: str | None, complete: bool, max_rows: int) -> tuple[str, Sample]:
    stripped = text.lstrip()
    lines = [line for line in stripped.splitlines() if line.strip()]
    as_lines = stripped.startswith("{") and (len(lines) > 1 or (said or "").startswith("jsonl"))
    records: list[object] = []
    decoder = json.JSONDecoder()
    if as_lines:
        for number, line in enumerate(lines[:max_rows], start=1):
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise SampleError(path, f"line {number} is not JSON: {exc.msg}") from exc
        kind = "jsonl"
    else:
        kind = "json"
        position = 0
        if stripped.startswith("{"):
            try:
                records.append(decoder.decode(stripped))
            except json.JSONDecodeError as exc:
                raise SampleError(path, f"not a JSON document: {exc.msg} at {exc.pos}") from exc
        else:
            position = 1
            while len(records) < max_rows:
                while position < len(stripped) and stripped[position] in " \t\r\n,":
                    position += 1
                if position >= len(stripped) or stripped[position] == "]":
                    break
                try:
                    record, position = decoder.raw_decode(stripped, position)
                except json.JSONDecodeError as exc:
                    if not complete:
                        break  # the element the sample's end cut
                    raise SampleError(path, f"not a JSON array of records: {exc.msg} at {exc.pos}") from exc
                records.append(record)
    objects = [r for r in records if isinstance(r, dict)]
    if len(objects) < len(records):
        raise SampleError(path, f"{len(records) - len(objects)} records are not JSON objects")
    if not objects:
        raise SampleError(path, "no records")
    columns = list(dict.fromkeys(key for record in objects for key in record))
    values: dict[str, list[str | None]] = {c: [_as_cell(r.get(c)) for r in objects] for c in columns}
    nested = [c for c in columns if any(isinstance(r.get(c), (dict, list)) for r in objects)]
    notes = (
        [f"nested values (objects or arrays) in {nested}: bronze refuses a file whose mapped column is nested"]
        if nested
        else []
    )
    return kind, Sample(
        path=path,
        format=kind,
        columns=columns,
        values=values,
        line_ends=_line_ends(text) if as_lines else None,
        complete=len(objects) < max_rows,
        notes=notes,
    )


def _parquet_sample(path: Path, max_rows: int) -> Sample:
    # Bronze's own text of a typed value; imported here, as the CLI builds its parser without it.
    from resight_platform.transforms.bronze import _as_text

    try:
        frame = pl.read_parquet(path, n_rows=max_rows)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise SampleError(path, f"starts as Parquet but cannot be read: {str(exc).splitlines()[0]}") from exc
    # Native timestamps only: bronze writes a native date as an ISO date, which the values tell.
    temporal = {name for name, dtype in frame.schema.items() if isinstance(dtype, pl.Datetime)}
    nested = [name for name, dtype in frame.schema.items() if dtype.is_nested()]
    flat = frame.select([_as_text(pl.col(n), d).alias(n) for n, d in frame.schema.items() if not d.is_nested()])
    values: dict[str, list[str | None]] = {name: flat[name].to_list() for name in flat.columns}
    return Sample(
        path=path,
        format="parquet",
        columns=list(frame.columns),
        values={name: values.get(name, [None] * frame.height) for name in frame.columns},
        native_temporal=temporal,
        complete=frame.height < max_rows,
        notes=[f"nested columns {nested}: bronze refuses a file whose mapped column is nested"] if nested else [],
    )
