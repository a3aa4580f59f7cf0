"""Date and date-time formats: parse fast, tell "no such format" from "no such day", format back.

A format is a strptime string (``%d/%m/%Y``), a pattern (``dd/MM/yyyy``, ``dd-MMM-yyyy HH:mm``) or
``iso``. Formats are compiled once to a regular expression; parsing is a match plus ``date(...)``,
several times faster than ``strptime`` and independent of the locale (month names are English).
Formatting back (for ``unmap``) uses the same compiled parts, so a value round-trips.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo

MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
MONTH_NAMES = (
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
)
LONDON = ZoneInfo("Europe/London")

# directive -> (regex, field)
_DIRECTIVES: dict[str, tuple[str, str]] = {
    "Y": (r"(\d{4})", "year"),
    "m": (r"(\d{1,2})", "month"),
    "b": (r"([A-Za-z]{3})", "month_abbr"),
    "B": (r"([A-Za-z]{3,9})", "month_name"),
    "d": (r"(\d{1,2})", "day"),
    "H": (r"(\d{1,2})", "hour"),
    "M": (r"(\d{2})", "minute"),
    "S": (r"(\d{2})", "second"),
    "f": (r"(\d{1,6})", "fraction"),
    "z": (r"(Z|[+-]\d{2}:?\d{2})", "offset"),
}
# pattern token -> strptime directive (longest tokens first)
_PATTERN_TOKENS = (
    ("yyyy", "Y"),
    ("MMMM", "B"),
    ("MMM", "b"),
    ("MM", "m"),
    ("dd", "d"),
    ("HH", "H"),
    ("mm", "M"),
    ("ss", "S"),
    ("SSSSSS", "f"),
    ("SSS", "f"),
    ("XXX", "z"),
    ("Z", "z"),
)
_TIME_FIELDS = {"hour", "minute", "second", "fraction", "offset"}


class FormatError(ValueError):
    """A format string the engine cannot use; the message says what to write instead."""


class DateValueError(ValueError):
    """A value that does not parse: ``impossible`` is True when it has the shape but not a real day."""

    def __init__(self, impossible: bool) -> None:
        super().__init__("impossible date" if impossible else "unparseable date")
        self.impossible = impossible


def _to_directives(text: str) -> list[tuple[str, str]]:
    """Split a strptime string or a pattern into ("lit", text) / ("dir", letter) parts."""
    parts: list[tuple[str, str]] = []
    if "%" in text:
        i = 0
        while i < len(text):
            char = text[i]
            if char == "%" and i + 1 < len(text):
                letter = text[i + 1]
                if letter == "%":
                    parts.append(("lit", "%"))
                elif letter == "y":
                    raise FormatError("%y (two-digit year) is ambiguous for birth dates; use %Y")
                elif letter not in _DIRECTIVES:
                    raise FormatError(f"%{letter} is not supported; use %d %m %b %B %Y %H %M %S %f %z")
                else:
                    parts.append(("dir", letter))
                i += 2
            else:
                parts.append(("lit", char))
                i += 1
        return parts
    pattern = text
    has_time = "HH" in pattern
    if not has_time and "mm" in pattern:
        pattern = pattern.replace("mm", "MM")  # dd/mm/yyyy: without hours, mm can only be the month
    i = 0
    while i < len(pattern):
        for token, letter in _PATTERN_TOKENS:
            if pattern.startswith(token, i):
                parts.append(("dir", letter))
                i += len(token)
                break
        else:
            char = pattern[i]
            if char.isalpha():
                raise FormatError(
                    f"the pattern letter {char!r} is not understood; use dd MM MMM MMMM yyyy HH mm ss SSS "
                    "XXX "
                    "(or a strptime format such as %d/%m/%Y)"
                )
            parts.append(("lit", char))
            i += 1
    return parts


class DateFormat:
    """One compiled format: ``parse`` a string, ``format`` a date or datetime."""

    __slots__ = ("fields", "has_date", "has_time", "iso", "parts", "regex", "simple", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.iso = text.strip().lower() == "iso"
        self.simple: tuple[int, int, int] | None = None
        if self.iso:
            self.parts: list[tuple[str, str]] = []
            self.fields: list[str] = []
            self.regex = None
            self.has_time = True
            self.has_date = True
            return
        self.parts = _to_directives(text)
        regex = []
        fields = []
        for kind, value in self.parts:
            if kind == "lit":
                regex.append(r"\s+" if value == " " else re.escape(value))
            else:
                pattern, field = _DIRECTIVES[value]
                if field in fields:
                    raise FormatError(f"{text!r} names the same part twice")
                regex.append(pattern)
                fields.append(field)
        self.fields = fields
        self.regex = re.compile("".join(regex), re.IGNORECASE)
        self.has_time = bool(_TIME_FIELDS & set(fields))
        month = {"month", "month_abbr", "month_name"} & set(fields)
        self.has_date = "year" in fields and "day" in fields and bool(month)
        if set(fields) == {"year", "month", "day"}:
            self.simple = (fields.index("year"), fields.index("month"), fields.index("day"))
        if not self.has_date:
            raise FormatError(
                f"{text!r} has no full date (day, month and year); with a time, write the month as MM "
                "and minutes as mm"
            )

    def parse(self, value: str) -> date | datetime | None:
        """A ``date`` (no time parts) or ``datetime``; None when the shape does not match.

        Raises ``DateValueError(impossible=True)`` for a match that is not a real date (31/02).
        """
        if self.iso:
            return _parse_iso(value)
        match = self.regex.fullmatch(value)  # type: ignore[union-attr]
        if match is None:
            return None
        groups = match.groups()
        try:
            if self.simple is not None:
                year, month, day = self.simple
                return date(int(groups[year]), int(groups[month]), int(groups[day]))
            values = dict(zip(self.fields, groups, strict=True))
            year = int(values["year"])
            if "month" in values:
                month = int(values["month"])
            elif "month_abbr" in values:
                month = MONTHS.index(values["month_abbr"].lower()) + 1
            else:
                month = MONTH_NAMES.index(values["month_name"].lower()) + 1
            day = int(values["day"])
            if not self.has_time:
                return date(year, month, day)
            fraction = values.get("fraction")
            micro = int(fraction.ljust(6, "0")) if fraction else 0
            zone: tzinfo | None = None
            if values.get("offset"):
                zone = _offset(values["offset"])
            return datetime(
                year,
                month,
                day,
                int(values.get("hour") or 0),
                int(values.get("minute") or 0),
                int(values.get("second") or 0),
                micro,
                tzinfo=zone,
            )
        except ValueError:
            raise DateValueError(impossible=True) from None

    def format(self, value: date | datetime) -> str:
        if self.iso:
            return value.isoformat()
        out = []
        for kind, part in self.parts:
            if kind == "lit":
                out.append(part)
            elif part == "Y":
                out.append(f"{value.year:04d}")
            elif part == "m":
                out.append(f"{value.month:02d}")
            elif part == "b":
                out.append(MONTHS[value.month - 1].title())
            elif part == "B":
                out.append(MONTH_NAMES[value.month - 1].title())
            elif part == "d":
                out.append(f"{value.day:02d}")
            elif isinstance(value, datetime):
                out.append(_format_time(value, part))
            else:
                out.append(_format_time(datetime(value.year, value.month, value.day), part))
        return "".join(out)


def _format_time(value: datetime, part: str) -> str:
    if part == "H":
        return f"{value.hour:02d}"
    if part == "M":
        return f"{value.minute:02d}"
    if part == "S":
        return f"{value.second:02d}"
    if part == "f":
        return f"{value.microsecond:06d}"
    offset = value.utcoffset() or timedelta(0)
    minutes = int(offset.total_seconds()) // 60
    sign = "+" if minutes >= 0 else "-"
    minutes = abs(minutes)
    return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def _offset(text: str) -> tzinfo:
    if text in ("Z", "z"):
        return UTC
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    return timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))


_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_ISO_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:?\d{2})?")


def _parse_iso(value: str) -> date | datetime | None:
    try:
        if _ISO_DATE.fullmatch(value):
            return date.fromisoformat(value)
        if _ISO_DATETIME.fullmatch(value):
            return datetime.fromisoformat(value)
    except ValueError:
        raise DateValueError(impossible=True) from None
    return None


class DateParser:
    """A list of formats tried in order, with the time zone given to naive date-times."""

    __slots__ = ("formats", "zone")

    def __init__(self, formats: list[DateFormat], zone: tzinfo = LONDON) -> None:
        self.formats = formats
        self.zone = zone

    def parse(self, value: str) -> date | datetime:
        """The first format that matches wins; raises ``DateValueError``."""
        impossible = False
        for fmt in self.formats:
            try:
                parsed = fmt.parse(value)
            except DateValueError:
                impossible = True
                continue
            if parsed is not None:
                if isinstance(parsed, datetime) and parsed.tzinfo is None:
                    parsed = parsed.replace(tzinfo=self.zone)
                return parsed
        raise DateValueError(impossible)

    def parse_date(self, value: str) -> date:
        parsed = self.parse(value)
        return parsed.date() if isinstance(parsed, datetime) else parsed

    def parse_datetime(self, value: str) -> datetime:
        parsed = self.parse(value)
        if isinstance(parsed, datetime):
            return parsed
        return datetime(parsed.year, parsed.month, parsed.day, tzinfo=self.zone)

    def format(self, value: date | datetime) -> str:
        """Format with the first format of the value's precision (date-only vs with time)."""
        wants_time = isinstance(value, datetime)
        if wants_time and value.tzinfo is not None:
            value = value.astimezone(self.zone) if not _keeps_offset(self.formats) else value
        for fmt in self.formats:
            if fmt.has_time == wants_time or fmt.iso:
                if fmt.iso and not wants_time:
                    return value.isoformat()
                return fmt.format(value)
        return self.formats[0].format(value)

    def describe(self) -> str:
        return ", ".join(f.text for f in self.formats)


def _keeps_offset(formats: list[DateFormat]) -> bool:
    return any(f.iso or "offset" in f.fields for f in formats)
