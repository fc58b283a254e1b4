"""The host's BMC event log (Redfish LogServices: the SEL, "Event", "Log1"): where it is, its entries,
the mark taken before the burn-in and the entries that came after it. Plain entries only: judging them
is `provision.acceptance.eventlog`'s.

No sockets here: reads go through the walker's `fetch(path) -> dict | None`, and clearing through
`post(target, body)`, both the adapter's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from provision.bmc.types import BmcBadDocument
from provision.model.errors import BmcError

Doc = dict[str, Any]
Fetch = Callable[[str], Doc | None]
Post = Callable[[str, Doc], None]

ROOT = "/redfish/v1"
# Log services that hold the hardware's events, best first (Id, Name or LogEntryType, any case).
EVENT_LOGS = ("sel", "event", "eventlog", "log1", "log")
MAX_PAGES = 50  # Members@odata.nextLink pages followed; a SEL holds a few thousand entries at most


@dataclass(frozen=True)
class LogEntry:
    id: str
    created: str | None
    severity: str | None  # "OK", "Warning", "Critical" (Redfish Health); None where not said
    message: str | None
    message_id: str | None
    path: str


@dataclass(frozen=True)
class LogMark:
    """The newest entry of the log when the mark was taken (None: the log was empty)."""

    service: str | None
    last_id: str | None = None
    last_created: str | None = None
    entries: int = 0
    cleared: bool = False
    error: str | None = None  # the log could not be read: what the BMC said

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def from_dict(data: Any) -> LogMark:
        """The mark a run journaled; none (a run from before the event log was read) is an error mark."""
        if not isinstance(data, dict):
            return LogMark(service=None, error="no event-log mark was taken before the burn-in")

        def text(key: str) -> str | None:
            value = data.get(key)
            return value if isinstance(value, str) else None

        count = data.get("entries")
        return LogMark(
            service=text("service"),
            last_id=text("last_id"),
            last_created=text("last_created"),
            entries=count if isinstance(count, int) else 0,
            cleared=data.get("cleared") is True,
            error=text("error"),
        )


def ref_of(doc: Doc | None, key: str) -> str | None:
    value = (doc or {}).get(key)
    return value["@odata.id"] if isinstance(value, dict) and isinstance(value.get("@odata.id"), str) else None


def refs_of(value: Any) -> list[str]:
    items = value if isinstance(value, list) else [value]
    return [v["@odata.id"] for v in items if isinstance(v, dict) and isinstance(v.get("@odata.id"), str)]


def str_of(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def _rank(doc: Doc) -> int | None:
    names = [str_of(doc.get(k)) for k in ("Id", "Name", "LogEntryType")]
    words = {n.lower().replace(" ", "") for n in names if n}
    ranks = [i for i, word in enumerate(EVENT_LOGS) if any(w == word or w.startswith(word) for w in words)]
    return min(ranks) if ranks else None


def _best(fetch: Fetch, owner: Doc) -> str | None:
    path = ref_of(owner, "LogServices")
    coll = fetch(path) if path else None
    ranked: list[tuple[int, str]] = []
    for member in refs_of((coll or {}).get("Members")):
        doc = fetch(member)
        rank = None if doc is None else _rank(doc)
        if rank is not None:
            ranked.append((rank, member))
    return min(ranked)[1] if ranked else None


def find_log_service(fetch: Fetch, system: Doc) -> str | None:
    """The System's own event log, else its Managers': SEL before Event before Log1."""
    found = _best(fetch, system)
    links = system.get("Links")
    for manager in refs_of(links.get("ManagedBy") if isinstance(links, dict) else None):
        if found is not None:
            break
        doc = fetch(manager)
        found = _best(fetch, doc) if doc is not None else None
    return found


def _entry(doc: Doc, path: str) -> LogEntry:
    return LogEntry(
        id=str_of(str(doc.get("Id") or "")) or path.rsplit("/", 1)[-1],
        created=str_of(doc.get("Created")),
        # Severity up to LogEntry 1.x; newer services may say MessageSeverity instead
        severity=str_of(doc.get("Severity")) or str_of(doc.get("MessageSeverity")),
        message=str_of(doc.get("Message")),
        message_id=str_of(doc.get("MessageId")),
        path=path,
    )


def read_entries(fetch: Fetch, service: str) -> list[LogEntry]:
    """Every entry of the log service, as the BMC lists them (embedded in Members or linked)."""
    doc = fetch(service)
    if doc is None:
        raise BmcBadDocument(f"{service}: the log service is listed but answers 404")
    page = ref_of(doc, "Entries")
    if page is None:
        raise BmcBadDocument(f"{service}: the log service has no Entries")
    out: list[LogEntry] = []
    for _ in range(MAX_PAGES):
        coll = fetch(page)
        if coll is None:
            raise BmcBadDocument(f"{page}: the log's entries answer 404")
        for member in coll.get("Members") or []:
            if not isinstance(member, dict) or not isinstance(member.get("@odata.id"), str):
                continue
            path = member["@odata.id"]
            body = member if len(member) > 1 else fetch(path)
            if body is not None:
                out.append(_entry(body, path))
        nxt = coll.get("Members@odata.nextLink")
        if not isinstance(nxt, str):
            break
        page = nxt
    return out


def _when(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _number(text: str | None) -> int | None:
    return int(text) if text is not None and text.isdigit() else None


def _order(entry: LogEntry) -> tuple[float, int]:
    when, num = _when(entry.created), _number(entry.id)
    return (when if when is not None else float("-inf"), num if num is not None else -1)


def newest(entries: list[LogEntry]) -> LogEntry | None:
    """The latest entry: by Created, then numeric Id; where neither orders them, the last listed."""
    if not entries:
        return None
    ordered = [e for e in entries if _order(e) != (float("-inf"), -1)]
    return max(ordered, key=_order) if ordered else entries[-1]


def mark_of(service: str | None, entries: list[LogEntry], *, cleared: bool = False) -> LogMark:
    last = newest(entries)
    return LogMark(
        service=service,
        last_id=last.id if last else None,
        last_created=last.created if last else None,
        entries=len(entries),
        cleared=cleared,
    )


def after(mark: LogMark, entries: list[LogEntry]) -> list[LogEntry]:
    """The entries newer than the mark (all of them when the log was empty, cleared or rotated)."""
    if mark.last_id is None:
        return list(entries)
    fake = LogEntry(mark.last_id, mark.last_created, None, None, None, "")
    bar = _order(fake)
    if bar != (float("-inf"), -1):
        return [e for e in entries if _order(e) > bar and e.id != mark.last_id]
    ids = [e.id for e in entries]
    if mark.last_id in ids:  # nothing orders them: what is listed after the marked entry
        return entries[ids.index(mark.last_id) + 1 :]
    return list(entries)


def host_system(fetch: Fetch, wanted: str | None) -> str:
    """bmc.system, else the only System, else the first that boots (a GPU baseboard does not)."""
    if wanted:
        return wanted
    root = fetch(f"{ROOT}/") or {}
    listed = refs_of((fetch(ref_of(root, "Systems") or f"{ROOT}/Systems") or {}).get("Members"))
    if not listed:
        raise BmcBadDocument(f"{ROOT}/Systems: the BMC lists no systems")
    for path in listed if len(listed) > 1 else ():
        doc = fetch(path)
        if doc is not None and isinstance(doc.get("Boot"), dict):
            return path
    return listed[0]


def _read(fetch: Fetch, wanted: str | None) -> tuple[str, list[LogEntry]]:
    path = host_system(fetch, wanted)
    system = fetch(path)
    if system is None:
        raise BmcBadDocument(f"{path}: the host's System answers 404")
    service = find_log_service(fetch, system)
    if service is None:
        raise BmcBadDocument(f"{path}: neither the System nor its Managers list an event log (SEL)")
    return service, read_entries(fetch, service)


def take_mark(fetch: Fetch, system: str | None, *, clear: Post | None = None) -> LogMark:
    """Note the newest entry of the host's event log (`system`: bmc.system, None to find it); first
    clear the log where `clear` is given. A log that cannot be read is a mark with `error`, never an
    exception: the burn-in goes on, and the finding after it says why the log was not judged."""
    try:
        service, entries = _read(fetch, system)
        if clear is None:
            return mark_of(service, entries)
        doc = fetch(service) or {}
        action = (doc.get("Actions") or {}).get("#LogService.ClearLog") or {}
        target = action.get("target") if isinstance(action, dict) else None
        if not isinstance(target, str):
            raise BmcBadDocument(f"{service}: the log service offers no LogService.ClearLog action")
        clear(target, {})
        return mark_of(service, [], cleared=True)
    except BmcError as exc:
        return LogMark(service=None, error=str(exc))


def entries_since(fetch: Fetch, system: str | None, mark: LogMark) -> tuple[list[LogEntry], str | None]:
    """The entries logged after `mark`, or ([], why) where the log cannot be read."""
    if mark.error is not None:
        return [], mark.error
    try:
        service = mark.service or _read(fetch, system)[0]
        return after(mark, read_entries(fetch, service)), None
    except BmcError as exc:
        return [], str(exc)


def entry_dicts(entries: list[LogEntry]) -> list[dict[str, Any]]:
    return [asdict(e) for e in entries]
