"""Reports out: a rich table, CSV (spreadsheet-safe), JSON, and PNG charts (matplotlib, Agg)."""

from __future__ import annotations

import csv
import json
import math
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.table import Table

from dialer.reports.queries import Report

_RATE_WORDS = ("rate", "occupancy", "reached %", "target")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _is_rate(column: str) -> bool:
    return any(word in column.lower() for word in _RATE_WORDS)


def cell_text(column: str, value: Any) -> str:
    """How one value reads in the table: rates as percentages, seconds as h:mm:ss."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "YES" if value else ""
    if isinstance(value, float) and _is_rate(column):
        return f"{value * 100:.1f}%"
    if isinstance(value, int | float) and column.startswith("Avg"):
        return f"{value:.1f}"
    if isinstance(value, int | float) and column.endswith(" s"):
        total = round(value)
        h, rest = divmod(total, 3600)
        m, s = divmod(rest, 60)
        return f"{h}:{m:02d}:{s:02d}"
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


def table(report: Report) -> Table:
    """The report as a rich table, notes as its caption."""
    out = Table(title=report.title, title_justify="left", caption="\n".join(report.notes))
    numeric = [
        all(isinstance(row[i], int | float) or row[i] is None for row in report.rows)
        for i in range(len(report.columns))
    ]
    for column, is_num in zip(report.columns, numeric, strict=True):
        out.add_column(column, justify="right" if is_num and report.rows else "left")
    for row in report.rows:
        out.add_row(*(cell_text(c, v) for c, v in zip(report.columns, row, strict=True)))
    return out


def _csv_cell(value: Any) -> Any:
    """Plain values; text that a spreadsheet would run as a formula is quoted with '."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def write_csv(report: Report, path: Path) -> None:
    """The report's rows as CSV (UTF-8 with BOM so spreadsheets read Devanagari right)."""
    with path.open("w", newline="", encoding="utf-8-sig") as fh:
        writer = csv.writer(fh)
        writer.writerow(report.columns)
        for row in report.rows:
            writer.writerow([_csv_cell(v) for v in row])


def to_json(report: Report) -> str:
    """The report as JSON: title, columns, rows as objects, notes."""
    return json.dumps(
        {"report": report.name, "title": report.title, "rows": report.as_dicts()},
        ensure_ascii=False,
        indent=2,
        default=str,
    )


def _nan(values: Sequence[float | None]) -> list[float]:
    return [math.nan if v is None else v * 100 for v in values]


def write_png(report: Report, path: Path) -> None:
    """A chart of the report (what reads better as a picture), drawn with the Agg backend."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    with matplotlib.rc_context({"font.family": _fonts()}), warnings.catch_warnings():
        # Names in Devanagari draw as boxes where no Indic font is installed; the CSV and the
        # table carry them exactly, so a missing glyph is no reason to fail the chart.
        warnings.filterwarnings(
            "ignore", message="Glyph .* missing from font", category=UserWarning
        )
        _draw(report, path)


def _fonts() -> list[str]:
    """DejaVu Sans, then any installed font that has Devanagari (matplotlib falls back)."""
    from matplotlib import font_manager

    installed = {f.name for f in font_manager.fontManager.ttflist}
    wanted = ["Noto Sans Devanagari", "Lohit Devanagari", "Nirmala UI", "Mangal", "FreeSans"]
    return ["DejaVu Sans", *(name for name in wanted if name in installed)]


def _draw(report: Report, path: Path) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 5.5), dpi=100)
    ax = fig.add_subplot()
    chart = report.chart
    drawer = _DRAWERS.get(report.name)
    if drawer is None or not report.rows:
        ax.text(0.5, 0.5, "no data in this period", ha="center", va="center")
        ax.set_axis_off()
    else:
        drawer(ax, chart)
    ax.set_title(report.title)
    fig.tight_layout()
    fig.savefig(path, format="png")


def _draw_daily(ax: Any, chart: dict[str, Any]) -> None:
    days = chart["days"]
    bottom = [0] * len(days)
    for key, colour in (
        ("connected", "tab:green"),
        ("abandoned", "tab:red"),
        ("machine", "tab:gray"),
        ("other", "tab:blue"),
    ):
        values = chart["series"][key]
        ax.bar(days, values, bottom=bottom, label=key, color=colour)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    ax.set_ylabel("calls")
    ax.legend()
    ax.tick_params(axis="x", labelrotation=45)


def _draw_abandonment(ax: Any, chart: dict[str, Any]) -> None:
    days = chart["days"]
    for name, data in chart["campaigns"].items():
        (line,) = ax.plot(days, _nan(data["daily"]), marker="o", label=f"{name} day")
        ax.plot(
            days,
            _nan(data["rolling"]),
            linestyle="--",
            color=line.get_color(),
            label=f"{name} 30 days",
        )
        if data["target"] is not None:
            ax.axhline(data["target"] * 100, color="tab:red", linewidth=1)
    ax.set_ylim(bottom=0)
    ax.set_ylabel("abandoned / live answered, %")
    ax.legend()
    ax.tick_params(axis="x", labelrotation=45)


def _draw_agents(ax: Any, chart: dict[str, Any]) -> None:
    ax.barh(chart["agents"], _nan(chart["occupancy"]), color="tab:cyan")
    ax.set_xlabel("occupancy, %")
    ax.set_xlim(0, 100)


def _draw_coverage(ax: Any, chart: dict[str, Any]) -> None:
    units, reached = chart["units"][:40], chart["reached"][:40]
    ax.barh(units, _nan(reached), color="tab:green")
    ax.set_xlabel("leads reached, %")
    ax.set_xlim(0, 100)


_DRAWERS = {
    "daily": _draw_daily,
    "abandonment": _draw_abandonment,
    "agents": _draw_agents,
    "coverage": _draw_coverage,
}
