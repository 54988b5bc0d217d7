"""Charts drawn on the server as inline SVG: no script, nothing for the CSP to allow.

Each function returns shapes (rectangles, labels) in SVG user units; the templates draw them.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import Date, cast, func, select
from sqlalchemy.orm import Session

from vigil.server import agent_health
from vigil.server.models import Incident

DAYS = 30
# The default of `[agents] silent_after` (the pages pass server.toml's).
SILENT_AFTER = timedelta(minutes=15)
# Colour classes (the stylesheet gives each a fill) for categories, in order of first use.
PALETTE = 8
WIDTH = 1100
HEIGHT = 220
AXIS = 24


@dataclass
class Bar:
    """One rectangle with its tooltip."""

    x: float
    y: float
    width: float
    height: float
    css: str
    title: str


@dataclass
class Chart:
    """Shapes and legend of one chart."""

    width: int
    height: int
    bars: list[Bar] = field(default_factory=list)
    # (x, y, text, text-anchor)
    labels: list[tuple[float, float, str, str]] = field(default_factory=list)
    legend: list[tuple[str, str]] = field(default_factory=list)
    total: int = 0


def _day(session: Session) -> object:
    if session.get_bind().dialect.name == "sqlite":
        return func.date(Incident.first_seen)
    return cast(func.timezone("UTC", Incident.first_seen), Date)


def incidents_per_day(session: Session, today: date | None = None) -> Chart:
    """Incidents first seen on each of the last 30 days, stacked by category."""
    today = today or datetime.now(UTC).date()
    start = today - timedelta(days=DAYS - 1)
    since = datetime(start.year, start.month, start.day, tzinfo=UTC)
    day = _day(session)
    rows = session.execute(
        select(day, Incident.category, func.count())  # type: ignore[call-overload]
        .where(Incident.first_seen >= since)
        .group_by(day, Incident.category)
    ).all()
    counts: dict[date, dict[str, int]] = defaultdict(dict)
    categories: list[str] = []
    for d, category, n in rows:
        when = d if isinstance(d, date) else date.fromisoformat(str(d))
        name = category or "none"
        counts[when][name] = int(n)
        if name not in categories:
            categories.append(name)
    categories.sort()
    css = {c: f"c{i % PALETTE}" for i, c in enumerate(categories)}
    peak = max((sum(v.values()) for v in counts.values()), default=0)
    chart = Chart(WIDTH, HEIGHT, legend=[(c, css[c]) for c in categories])
    # The baseline and a line at the peak.
    chart.bars.append(Bar(40, HEIGHT - AXIS, WIDTH - 40, 1, "axis", ""))
    chart.bars.append(Bar(40, 10, WIDTH - 40, 0.5, "grid", ""))
    slot = (WIDTH - 40) / DAYS
    plot = HEIGHT - AXIS - 10
    for i in range(DAYS):
        d = start + timedelta(days=i)
        x = 40 + i * slot
        y: float = HEIGHT - AXIS
        for c in categories:
            n = counts.get(d, {}).get(c, 0)
            if not n:
                continue
            h = plot * n / peak
            y -= h
            chart.bars.append(Bar(x + 1, y, slot - 2, h, css[c], f"{d.isoformat()}: {n} × {c}"))
            chart.total += n
        if i == DAYS - 1:
            # Today, flush with the right edge (centred it would be cut off).
            chart.labels.append((x + slot, HEIGHT - 6, d.strftime("%d %b"), "end"))
        elif i % 5 == 0 and i < DAYS - 3:
            chart.labels.append((x + slot / 2, HEIGHT - 6, d.strftime("%d %b"), "middle"))
    chart.labels.append((34, 14, str(peak), "end"))
    chart.labels.append((34, HEIGHT - AXIS, "0", "end"))
    return chart


def agents_health(
    session: Session, now: datetime | None = None, silent_after: timedelta = SILENT_AFTER
) -> Chart:
    """Agents by health as the API says it (vigil.server.agent_health): ok, silent (an open
    `agent_silent` episode, or nothing heard for `silent_after`), never heard from, revoked."""
    now = now or datetime.now(UTC)
    state = agent_health.status_sql(silent_after, now)
    found: dict[str, int] = dict(
        session.execute(select(state, func.count()).group_by(state)).tuples().all()
    )
    order = [("ok", "ok"), ("silent", "warn"), ("enrolled", "idle"), ("revoked", "bad")]
    peak = max(found.values(), default=0) or 1
    chart = Chart(WIDTH, 4 * 30 + 6)
    for i, (name, css) in enumerate(order):
        n = int(found.get(name, 0))
        y = 4 + i * 30
        w = (WIDTH - 200) * n / peak
        chart.bars.append(Bar(110, y, max(w, 2), 20, css, f"{name}: {n}"))
        chart.labels.append((100, y + 15, name, "end"))
        chart.labels.append((110 + max(w, 2) + 8, y + 15, str(n), "start"))
        chart.total += n
    return chart
