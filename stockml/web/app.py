"""The ML Signals web app: today's signals, why, and how such signals fared, in a browser.

Routes (HTML unless /api):
    /, /ml-signals          newest signals of each profile; ?signal= &sector= &profile=
                            filter, ?sort=<column>&dir=asc|desc sort; data freshness
    /symbol/{symbol}        candles, volume, indicators, past walk-forward signals by
                            outcome, latest features with cross-sectional percentiles, and
                            the "why" of today's p_win / p_loss (explain.py)
    /runs, /runs/{id}       training runs; one run's report with interactive charts
    /runs/{id}/files/{png}  the plots report.md links, from the run folder
    /ingest                 ingest_status, failures first
    /api/signals            the signals page's rows as JSON (same filters)
    /api/runs/{id}          a run's metrics and trades summary as JSON

Safe by default: `serve_forever` binds 127.0.0.1 unless told otherwise; the store is only
read, through a private snapshot copy (`stockml.web.snapshot`: writers are never locked
out); SQL lives in `stockml.web.queries` with parameters; Jinja autoescapes every value
(a symbol is user input) and a Content-Security-Policy forbids inline scripts, so charts
are data (`<script type="application/json">`) drawn by static/app.js with the plotly.js
shipped inside the `plotly` package. Unknown symbol or run: a 404 page; a failure: a
500 page and a log event, never a traceback in the browser.
"""

from __future__ import annotations

import json
import socket
import tempfile
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import duckdb
import structlog
from jinja2 import Environment, FileSystemLoader
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from stockml.errors import InputError, StockmlError
from stockml.web import charts, queries
from stockml.web.snapshot import Snapshots, StoreBusy

log = structlog.get_logger("web")

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
LOOPBACK = ("127.0.0.1", "localhost", "::1")
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
TRADES_SHOWN = 300  # newest trades listed on a run page (all are in the charts)
POOLED_COLUMNS = [
    ("accuracy", ".3f"),
    ("log_loss", ".3f"),
    ("top10_win_precision", ".3f"),
    ("call_precision", ".3f"),
    ("call_coverage", ".1%"),
    ("put_precision", ".3f"),
    ("put_coverage", ".1%"),
    ("call_mean_exit_return", "+.2%"),
    ("put_mean_exit_return", "+.2%"),
]
WINDOW_COLUMNS = [
    *POOLED_COLUMNS[:2],
    *POOLED_COLUMNS[3:7],
    ("t_call", ".4f"),
    ("t_put", ".4f"),
    ("calibrated", ".0f"),
]


def plotly_js() -> Path:
    """plotly.min.js as shipped inside the installed `plotly` package."""
    import plotly

    return Path(plotly.__file__).resolve().parent / "package_data" / "plotly.min.js"


def fmt(value: Any, spec: str = ".3f") -> str:
    """A number for a table cell: '–' for missing/NaN."""
    if value is None or (isinstance(value, float) and value != value):
        return "–"
    try:
        return format(value, spec)
    except (TypeError, ValueError):
        return str(value)


def _environment() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True, auto_reload=False)
    env.filters["fmt"] = fmt
    return env


def resolve_run_dir(run_dir: str, db: Path, run_id: str) -> Path:
    """The run folder as recorded (relative to where `stockml train` ran), else beside the
    store (`<db folder>/runs/<id>`)."""
    recorded = Path(run_dir)
    return recorded if recorded.is_dir() else db.parent / "runs" / run_id


@lru_cache(maxsize=4)
def _live_model(folder: str, stamp: int):
    from training.ray_runner import load_model

    return load_model(Path(folder), "signal_model")


def live_model(folder: Path):
    """The run's SignalModel (hash-checked), cached while its file is unchanged."""
    stamp = (folder / "signal_model.pkl").stat().st_mtime_ns
    return _live_model(str(folder), stamp)


def create_app(db: Path, workdir: Path | None = None) -> Starlette:
    """The app reading the store at `db` through snapshot copies kept in `workdir` (a
    fresh temporary folder, deleted at shutdown, when None)."""
    db = Path(db)
    owned = workdir is None
    folder = Path(tempfile.mkdtemp(prefix="stockml-serve-")) if owned else Path(workdir)
    snapshots = Snapshots(db, folder)
    env = _environment()

    def page(name: str, request: Request, status: int = 200, **context) -> HTMLResponse:
        html = env.get_template(name).render(request=request, db=str(db), **context)
        return HTMLResponse(html, status_code=status, headers=HEADERS)

    def reading(handler: Callable[..., Response]) -> Callable[[Request], Response]:
        """Run `handler(request, cursor, info)` on the current snapshot."""

        def endpoint(request: Request) -> Response:
            with snapshots.reader() as (cursor, info):
                return handler(request, cursor, info)

        return endpoint

    def signal_filters(request: Request) -> dict[str, Any]:
        q = request.query_params
        sort = q.get("sort", "probability")
        direction = q.get("dir", "desc")
        if sort not in queries.SORT_COLUMNS or direction not in ("asc", "desc"):
            raise HTTPException(400, "sort must be one of the table's columns, dir asc or desc")
        signal = q.get("signal") or None
        if signal is not None and signal not in queries.SIGNALS:
            raise HTTPException(400, f"signal must be one of {', '.join(queries.SIGNALS)}")
        return {
            "signal": signal,
            "sector": q.get("sector") or None,
            "profile": q.get("profile") or None,
            "sort": sort,
            "descending": direction == "desc",
        }

    def all_signals(cur, info) -> list[dict]:
        return info.memo("signals", lambda: queries.latest_signals(cur))

    def signals_page(request: Request, cur, info) -> Response:
        chosen = signal_filters(request)
        found = queries.pick_signals(all_signals(cur, info), **chosen)
        kept = {k: chosen[k] for k in ("signal", "sector", "profile") if chosen[k]}

        def sort_link(column: str) -> str:
            descending = not (chosen["sort"] == column and chosen["descending"])
            return "?" + urlencode({**kept, "sort": column, "dir": "desc" if descending else "asc"})

        return page(
            "signals.html",
            request,
            info=info,
            rows=found,
            chosen=chosen,
            choices=info.memo("choices", lambda: queries.filter_choices(cur)),
            fresh=freshness(cur, info),
            sort_link=sort_link,
        )

    def freshness(cur, info) -> dict:
        today = date.today()  # the stale warning depends on the day too
        return info.memo(("freshness", today), lambda: queries.freshness(cur, today))

    def api_signals(request: Request, cur, info) -> Response:
        found = queries.pick_signals(all_signals(cur, info), **signal_filters(request))
        return JSONResponse(
            {
                "snapshot_taken_at": info.taken_at.isoformat(),
                "freshness": {k: queries.as_json(v) for k, v in freshness(cur, info).items()},
                "signals": [{k: queries.as_json(v) for k, v in r.items()} for r in found],
            }
        )

    def symbol_page(request: Request, cur, info) -> Response:
        from features.catalog import FEATURES

        symbol = request.path_params["symbol"]
        overview = queries.symbol_overview(cur, symbol)
        if overview is None:
            raise HTTPException(404, f"no symbol {symbol!r} in the store")
        signals = queries.latest_signals(cur, symbol=symbol, sort="profile", descending=False)
        trades = queries.past_trades(cur, symbol, [s["run_id"] for s in signals])
        bars = queries.bars(cur, symbol)
        price = charts.price_chart(bars, trades) if len(bars["date"]) else None
        day = signals[0]["date"] if signals else None
        names = [f.name for f in FEATURES]
        found = queries.feature_percentiles(cur, symbol, day, names)
        features = []
        if found is not None:
            day, present, own, pct = found
            families = {f.name: f.family for f in FEATURES}
            features = [
                {"name": n, "family": families[n], "value": v, "pct": p}
                for n, v, p in zip(present, own, pct, strict=True)
            ]
        why = [explain_signal(cur, s) for s in signals]
        return page(
            "symbol.html",
            request,
            info=info,
            overview=overview,
            signals=signals,
            why=why,
            trades=trades,
            price=price,
            features=features,
            feature_day=day,
        )

    def explain_signal(cur, signal: dict) -> dict[str, Any]:
        """The explanation of one stored signal (stockml/web/explain.py), or why there is
        none."""
        from stockml.web.explain import explain, input_columns

        run = queries.training_run(cur, signal["run_id"])
        try:
            model = live_model(resolve_run_dir(run["run_dir"] or "", db, signal["run_id"]))
        except (OSError, StockmlError) as exc:
            return {"error": f"the run's live model cannot be read: {exc}"}
        columns = input_columns(model)
        if columns is None:
            return {"error": "the live model reads features this version does not know"}
        x = queries.model_row(cur, signal["symbol"], signal["date"], columns)
        if x is None:
            return {"error": f"no stored feature row of {signal['date']} to explain"}
        result = explain(model, x, columns)
        if result is None:
            return {
                "error": "the run's live model was saved without its training medians, "
                "which explanations need (trained by an earlier version): train again"
            }
        return {"result": result, "chart": charts.contributions_chart(result.win, result.loss)}

    def runs_page(request: Request, cur, info) -> Response:
        return page("runs.html", request, info=info, runs=queries.training_runs(cur))

    def run_context(cur, run_id: str) -> dict[str, Any]:
        run = queries.training_run(cur, run_id)
        if run is None:
            raise HTTPException(404, f"no training run {run_id!r} in the store")
        try:
            params = json.loads(run["params"] or "{}")
        except json.JSONDecodeError:
            params = {}
        if isinstance(params.get("profile"), str):  # stored as JSON text inside the JSON
            try:
                params["profile"] = json.loads(params["profile"])
            except json.JSONDecodeError:
                params["profile"] = {}
        return {
            "run": run,
            "params": params,
            "metrics": queries.run_metrics(cur, run_id),
            "trades": queries.run_trades(cur, run_id),
        }

    def run_page(request: Request, cur, info) -> Response:
        ctx = run_context(cur, request.path_params["run_id"])
        metrics, trades = ctx["metrics"], ctx["trades"]
        pooled = metrics.get("pooled", {})
        models = list(ctx["params"].get("models", []))
        baselines = sorted(m for m in pooled if m.startswith("baseline_"))
        windows = sorted((w for w in metrics if w != "pooled"), key=int)
        folder = resolve_run_dir(ctx["run"]["run_dir"] or "", db, ctx["run"]["run_id"])
        plots = sorted(p.name for p in folder.glob("*.png")) if folder.is_dir() else []
        figures = {
            "accuracy": charts.window_chart(
                metrics, "accuracy", ["stack", *models, *baselines], "accuracy per window"
            ),
            "log_loss": charts.window_chart(
                metrics, "log_loss", ["stack", *models, "baseline_prior"], "log loss per window"
            ),
            "pooled_call": charts.pooled_chart(
                pooled, "call_precision", "pooled: BUY CALL precision (share reaching target)"
            ),
            "brier": charts.brier_chart(metrics, ["loss", "timeout", "win"]),
            "equity": charts.equity_chart(trades),
        }
        outcomes: dict[tuple[str, Any], int] = {}
        for t in trades:
            outcomes[t["signal"], t["outcome"]] = outcomes.get((t["signal"], t["outcome"]), 0) + 1
        intervals = sorted(
            (
                model,
                metric[: -len("_ci_low")],
                values.get(metric[: -len("_ci_low")]),
                value,
                values.get(metric[: -len("_ci_low")] + "_ci_high"),
            )
            for model, values in pooled.items()
            for metric, value in values.items()
            if metric.endswith("_ci_low")
        )
        return page(
            "run.html",
            request,
            info=info,
            **ctx,
            pooled=pooled,
            windows=windows,
            figures=figures,
            outcomes=sorted(outcomes.items(), key=lambda kv: (kv[0][0], -(kv[0][1] or 0))),
            intervals=intervals,
            audit=pooled.get("audit_random_split", {}),
            plots=plots,
            pooled_columns=POOLED_COLUMNS,
            window_columns=WINDOW_COLUMNS,
            shown_trades=trades[-TRADES_SHOWN:][::-1],
            weights={
                w: {
                    m: metrics[w][m]["stack_weight"]
                    for m in models
                    if "stack_weight" in metrics[w].get(m, {})
                }
                for w in windows
            },
        )

    def run_file(request: Request, cur, info) -> Response:
        run_id, name = request.path_params["run_id"], request.path_params["name"]
        run = queries.training_run(cur, run_id)
        if run is None:
            raise HTTPException(404, f"no training run {run_id!r} in the store")
        folder = resolve_run_dir(run["run_dir"] or "", db, run_id)
        # Only the report's own plots: a name listed in the folder, never a path.
        listed = {p.name: p for p in folder.glob("*.png")} if folder.is_dir() else {}
        if name not in listed:
            raise HTTPException(404, f"run {run_id!r} has no plot {name!r}")
        return FileResponse(listed[name], media_type="image/png")

    def api_run(request: Request, cur, info) -> Response:
        ctx = run_context(cur, request.path_params["run_id"])
        run = {k: queries.as_json(v) for k, v in ctx["run"].items()}
        run["params"] = ctx["params"]
        metrics = {
            w: {m: {k: queries.as_json(v) for k, v in vals.items()} for m, vals in models.items()}
            for w, models in ctx["metrics"].items()
        }
        return JSONResponse(
            {
                "run": run,
                "metrics": metrics,
                "trades": [{k: queries.as_json(v) for k, v in t.items()} for t in ctx["trades"]],
            }
        )

    def ingest_page(request: Request, cur, info) -> Response:
        status = queries.ingest_status(cur)
        failed = sum(r["status"] != "ok" for r in status)
        return page("ingest.html", request, info=info, statuses=status, failed=failed)

    def plotly(request: Request) -> Response:
        return FileResponse(plotly_js(), headers={"Cache-Control": "public, max-age=86400"})

    def error_page(request: Request, status: int, message: str) -> Response:
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": message}, status_code=status, headers=HEADERS)
        return page("error.html", request, status=status, status_code=status, message=message)

    async def http_error(request: Request, exc: HTTPException) -> Response:
        return error_page(request, exc.status_code, exc.detail)

    async def busy(request: Request, exc: StoreBusy) -> Response:
        response = error_page(request, 503, str(exc))
        response.headers["Retry-After"] = "2"
        return response

    async def failed(request: Request, exc: Exception) -> Response:
        log.error("page_failed", path=request.url.path, error=repr(exc))
        message = "the page failed; the server log has the details"
        if isinstance(exc, duckdb.CatalogException):
            message = "the store lacks a table this page reads: run `stockml ingest` / `train`"
        return error_page(request, 500, message)

    routes = [
        Route("/", reading(signals_page)),
        Route("/ml-signals", reading(signals_page)),
        Route("/symbol/{symbol:path}", reading(symbol_page)),
        Route("/runs", reading(runs_page)),
        Route("/runs/{run_id}", reading(run_page)),
        Route("/runs/{run_id}/files/{name}", reading(run_file)),
        Route("/ingest", reading(ingest_page)),
        Route("/api/signals", reading(api_signals)),
        Route("/api/runs/{run_id}", reading(api_run)),
        Route("/static/plotly.min.js", plotly),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]

    def shutdown() -> None:
        snapshots.close()
        if owned:
            for leftover in folder.glob("*"):
                leftover.unlink(missing_ok=True)
            folder.rmdir()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        shutdown()

    return Starlette(
        routes=routes,
        exception_handlers={HTTPException: http_error, StoreBusy: busy, Exception: failed},
        lifespan=lifespan,
    )


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on (host, port); port 0 picks a free one. InputError when taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise InputError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def serve_forever(db: Path, host: str = "127.0.0.1", port: int = 5000, say=print) -> None:
    """Serve the app for the store at `db` until Ctrl-C, printing the page's address."""
    import uvicorn

    db = Path(db)
    app = create_app(db)  # refuses a missing store before anything listens
    sock = bind(host, port)
    bound_host, bound_port = sock.getsockname()[:2]
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    say(f"ML Signals page: http://{shown}:{bound_port}/ml-signals (store {db}; Ctrl-C stops)")
    if host not in LOOPBACK:
        say(f"warning: listening on {host}: anyone who can reach this machine can read the page")
    config = uvicorn.Config(
        app, log_level="warning", access_log=False, lifespan="on", timeout_graceful_shutdown=2
    )
    uvicorn.Server(config).run(sockets=[sock])
