"""The request handlers: module-level functions reading the app's `WebState`.

Each handler opens the current snapshot (`reading`), asks `queries` for rows, has
`views` build the page's data and renders a template (or JSON). Nothing here knows SQL
or a run folder's layout; every handler is tested in process (tests/test_web_app.py) and
through a real server and Chromium (tests/test_web.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import duckdb
import orjson
from jinja2 import Environment, FileSystemLoader
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response

from stockml.web import charts, queries, symbol_queries, trading, views
from stockml.web.run_files import run_plots
from stockml.web.snapshot import SnapshotInfo, Snapshots

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"


@dataclass(frozen=True)
class WebState:
    """What every handler reads, built once by `create_app` (`app.state.web`)."""

    db: Path  # the store shown (never opened: read through `snapshots`)
    snapshots: Snapshots
    runs: Path  # the runs folder: the only place run files are read from
    templates: Environment
    today: Callable[[], date] = date.today  # what "stale" is measured against


def fmt(value: Any, spec: str = ".3f") -> str:
    """A number for a table cell: '–' for missing/NaN."""
    if value is None or (isinstance(value, float) and value != value):
        return "–"
    try:
        return format(value, spec)
    except (TypeError, ValueError):
        return str(value)


def path_part(value: Any) -> str:
    """`value` as one URL path segment: every reserved character escaped, '/' included,
    so a stored symbol `../runs` links to its own page, never to /runs."""
    return quote(str(value), safe="")


def symbol_href(symbol: Any) -> str:
    """The link to a symbol's page. A symbol that is only dots would be a dot segment,
    which browsers resolve away even escaped: it goes in the query instead."""
    text = str(symbol)
    if text.strip(".") == "":
        return "/symbol/?" + urlencode({"symbol": text})
    return "/symbol/" + path_part(text)


def _json(value: Any, **_: Any) -> str:
    """JSON for `|tojson` (which then escapes it for HTML): orjson, ten times json's speed
    on a price chart of 5,000 bars; NaN becomes null, as plotly wants."""
    return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY).decode()


def templates() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True, auto_reload=False)
    env.policies["json.dumps_function"] = _json
    env.filters["fmt"] = fmt
    env.filters["path_part"] = path_part
    env.filters["symbol_href"] = symbol_href
    env.filters["trader_outcome"] = trading.outcome_for_trader
    return env


def state(request: Request) -> WebState:
    return request.app.state.web


def render_text(request: Request, name: str, **context: Any) -> str:
    """A template rendered with the request and the store's file name (never its path)."""
    web = state(request)
    return web.templates.get_template(name).render(
        request=request, store_name=web.db.name, **context
    )


def render(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    return HTMLResponse(render_text(request, name, **context), status_code=status)


@contextmanager
def reading(request: Request) -> Iterator[tuple[duckdb.DuckDBPyConnection, SnapshotInfo]]:
    """A cursor on the store's current snapshot and what the page says about it."""
    with state(request).snapshots.reader() as (cursor, info):
        yield cursor, info


def filters(request: Request) -> views.SignalFilters:
    try:
        return views.SignalFilters.from_query(request.query_params)
    except views.BadRequest as exc:
        raise HTTPException(400, str(exc)) from None


def _signals(request: Request, cur, info: SnapshotInfo) -> list[queries.Row]:
    today = state(request).today()  # which signals are stale depends on the day too
    return info.memo(("signals", today), lambda: queries.latest_signals(cur, today=today))


def _freshness(request: Request, cur, info: SnapshotInfo) -> queries.Row:
    today = state(request).today()  # the stale warning depends on the day too
    return info.memo(("freshness", today), lambda: queries.freshness(cur, today))


def _records(request: Request, cur, info: SnapshotInfo) -> list[trading.SideRecord]:
    """Both sides' verdict, live rule and record of each run the signals come from."""

    def build() -> list[trading.SideRecord]:
        runs = {r["run_id"]: r["profile"] for r in _signals(request, cur, info)}
        ids = list(runs)
        return trading.side_records(
            runs, trading.run_notes(cur, ids), trading.stack_figures(cur, ids)
        )

    return info.memo(("records", state(request).today()), build)


def signals_page(request: Request) -> Response:
    chosen = filters(request)
    today = state(request).today()
    with reading(request) as (cur, info):
        # One page per copy, filters, day and writer note: a copy never changes.
        html = info.recent(
            ("signals", chosen, today, info.writer),
            lambda: render_text(
                request,
                "signals.html",
                info=info,
                **views.signals_view(
                    chosen.pick(_signals(request, cur, info)), _records(request, cur, info)
                ),
                chosen=chosen,
                choices=info.memo("choices", lambda: queries.filter_choices(cur)),
                fresh=_freshness(request, cur, info),
                sort_link=lambda column: "?" + urlencode(chosen.sort_query(column)),
            ),
        )
        return HTMLResponse(html)


def api_signals(request: Request) -> Response:
    chosen = filters(request)
    today = state(request).today()
    with reading(request) as (cur, info):

        def body() -> bytes:
            fresh = _freshness(request, cur, info)
            shown = views.signals_view(
                chosen.pick(_signals(request, cur, info)), _records(request, cur, info)
            )
            return orjson.dumps(
                {
                    "snapshot_taken_at": info.taken_at.isoformat(),
                    "freshness": {k: queries.as_json(v) for k, v in fresh.items()},
                    "sides": [r.as_json() for r in shown["records"]],
                    "signals": views.signals_json(shown["rows"], shown["record_of"]),
                }
            )

        content = info.recent(("api-signals", chosen, today), body)
        return Response(content, media_type="application/json")


def symbol_page(request: Request) -> Response:
    symbol = request.path_params["symbol"] or request.query_params.get("symbol", "")
    today = state(request).today()
    with reading(request) as (cur, info):
        # The page is a function of the copy, the symbol, the day and the writer note:
        # the same request on the same copy is the same page.
        html = info.recent(
            ("symbol", symbol, today, info.writer),
            lambda: _symbol_html(request, cur, info, symbol, today),
        )
        return HTMLResponse(html)


def _symbol_html(request: Request, cur, info: SnapshotInfo, symbol: str, today: date) -> str:
    from features.catalog import FEATURES

    overview = symbol_queries.symbol_overview(cur, symbol)
    if overview is None:
        raise HTTPException(404, f"no symbol {symbol!r} in the store")
    signals = sorted(
        (r for r in _signals(request, cur, info) if r["symbol"] == symbol),
        key=lambda r: (r["profile"] is None, r["profile"] or ""),
    )
    trades = symbol_queries.past_trades(cur, symbol, [s["run_id"] for s in signals])
    bars = symbol_queries.bars(cur, symbol)
    day = signals[0]["date"] if signals else symbol_queries.newest_feature_day(cur, symbol)
    names = [f.name for f in FEATURES]
    table = info.memo(("feature-day", day), lambda: symbol_queries.feature_day(cur, day, names))
    found = symbol_queries.feature_percentiles(table if day else None, symbol)
    why = [
        views.why_view(symbol_queries.explanation(cur, s["run_id"], symbol, s["date"]))
        for s in signals
    ]
    return render_text(
        request,
        "symbol.html",
        info=info,
        overview=overview,
        signals=signals,
        why=why,
        trades=trades,
        price=charts.price_chart(bars, trades) if len(bars["date"]) else None,
        features=views.feature_rows(found, {f.name: f.family for f in FEATURES}),
        feature_day=found[0] if found is not None else day,
    )


def runs_page(request: Request) -> Response:
    with reading(request) as (cur, info):
        return render(request, "runs.html", info=info, runs=queries.training_runs(cur))


def _run(cur, run_id: str) -> queries.Row:
    run = queries.training_run(cur, run_id)
    if run is None:
        raise HTTPException(404, f"no training run {run_id!r} in the store")
    return run


def run_page(request: Request) -> Response:
    run_id = request.path_params["run_id"]
    with reading(request) as (cur, info):
        run = _run(cur, run_id)
        data = views.run_view(
            run,
            queries.run_metrics(cur, run_id),
            queries.run_trades(cur, run_id),
            list(run_plots(state(request).runs, run_id)),
            trading.run_notes(cur, [run_id]).get(run_id, {}),
            trading.equity_curves(cur, run_id),
        )
        return render(request, "run.html", info=info, **data)


def run_file(request: Request) -> Response:
    run_id, name = request.path_params["run_id"], request.path_params["name"]
    with reading(request) as (cur, _):
        _run(cur, run_id)
    # Only the report's own plots: a name listed in the run's folder, never a path.
    listed = run_plots(state(request).runs, run_id)
    if name not in listed:
        raise HTTPException(404, f"run {run_id!r} has no plot {name!r}")
    return FileResponse(listed[name], media_type="image/png")


def api_run(request: Request) -> Response:
    run_id = request.path_params["run_id"]
    with reading(request) as (cur, _):
        run = _run(cur, run_id)
        return JSONResponse(
            views.run_json(
                run,
                queries.run_metrics(cur, run_id),
                queries.run_trades(cur, run_id),
                trading.run_notes(cur, [run_id]).get(run_id, {}),
                trading.equity_curves(cur, run_id),
            )
        )


def ingest_page(request: Request) -> Response:
    with reading(request) as (cur, info):
        status = queries.ingest_status(cur)
        failed = sum(r["status"] != "ok" for r in status)
        return render(request, "ingest.html", info=info, statuses=status, failed=failed)


def plotly_js() -> Path:
    """plotly.min.js as shipped inside the installed `plotly` package."""
    import plotly

    return Path(plotly.__file__).resolve().parent / "package_data" / "plotly.min.js"


def plotly(request: Request) -> Response:
    return FileResponse(plotly_js(), headers={"Cache-Control": "public, max-age=86400"})
