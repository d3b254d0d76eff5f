"""The ML Signals web app: today's signals, why, and how such signals fared, in a browser.

Routes (HTML unless /api):
    /, /ml-signals          newest signals of each profile; ?signal= &sector= &profile=
                            filter, ?sort=<column>&dir=asc|desc sort; data freshness
    /symbol/{symbol}        candles, volume, indicators, past walk-forward signals by
                            outcome, latest features with cross-sectional percentiles, and
                            the "why" of today's p_win / p_loss (stored by `stockml signals`)
    /runs, /runs/{id}       training runs; one run's report with interactive charts
    /runs/{id}/files/{png}  the plots report.md links, from the run folder
    /ingest                 ingest_status, failures first
    /api/signals            the signals page's rows as JSON (same filters)
    /api/runs/{id}          a run's metrics and trades summary as JSON

The rooms: `pages` (the handlers, at module level, reading `app.state.web`), `views` (each
page's data from query results), `queries` (every SQL), `charts` (Plotly figures),
`run_files` (the one reader of run folders), `snapshot` (the private copy of the store),
`server` (the socket, the hosts answered, uvicorn).

Safe by default: `stockml serve` binds 127.0.0.1 unless told otherwise and answers only
the host names it is served as (TrustedHostMiddleware: a page of another origin whose name
an attacker points at 127.0.0.1, DNS rebinding, gets 400); the store is only read, through
a private snapshot copy (writers are never locked out); SQL lives in `queries` with
parameters; Jinja autoescapes every value (a symbol is user input) and a
Content-Security-Policy forbids inline scripts, so charts are data
(`<script type="application/json">`) drawn by static/app.js with the plotly.js shipped
inside the `plotly` package; every response carries `nosniff`. Unknown symbol or run: a 404
page; a failure: one line in a 500 page and a log event, never a traceback in the browser.
"""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import date
from pathlib import Path

import duckdb
import structlog
from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from stockml.errors import StoreError
from stockml.web import pages
from stockml.web.snapshot import Snapshots, StoreBusy, remove_stale_folders

log = structlog.get_logger("web")

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


class SecurityHeaders:
    """Adds HEADERS to every response: pages, JSON, static files, plots and errors."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for key, value in HEADERS.items():
                    headers[key] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)


ROUTES = [
    Route("/", pages.signals_page),
    Route("/ml-signals", pages.signals_page),
    Route("/symbol/{symbol:path}", pages.symbol_page),
    Route("/runs", pages.runs_page),
    Route("/runs/{run_id}", pages.run_page),
    Route("/runs/{run_id}/files/{name}", pages.run_file),
    Route("/ingest", pages.ingest_page),
    Route("/api/signals", pages.api_signals),
    Route("/api/runs/{run_id}", pages.api_run),
    Route("/static/plotly.min.js", pages.plotly),
    Mount("/static", StaticFiles(directory=pages.STATIC), name="static"),
]


def error_page(request: Request, status: int, message: str) -> Response:
    if request.url.path.startswith("/api/"):
        return JSONResponse({"error": message}, status_code=status)
    return pages.render(request, "error.html", status=status, status_code=status, message=message)


async def http_error(request: Request, exc: HTTPException) -> Response:
    return error_page(request, exc.status_code, exc.detail)


async def busy(request: Request, exc: StoreBusy) -> Response:
    response = error_page(request, 503, str(exc))
    response.headers["Retry-After"] = "2"
    return response


async def unreadable(request: Request, exc: StoreError) -> Response:
    """The store (or the server's copy of it) cannot be read: that one line, 503."""
    log.error("store_unreadable", path=request.url.path, error=str(exc))
    return error_page(request, 503, str(exc))


async def failed(request: Request, exc: Exception) -> Response:
    log.error("page_failed", path=request.url.path, error=repr(exc))
    message = "the page failed; the server log has the details"
    if isinstance(exc, duckdb.CatalogException):
        message = "the store lacks a table this page reads: run `stockml ingest` / `train`"
    return error_page(request, 500, message)


def create_app(
    db: Path,
    workdir: Path | None = None,
    runs: Path | None = None,
    hosts: Sequence[str] = LOOPBACK_HOSTS,
    today: Callable[[], date] = date.today,
) -> Starlette:
    """The app reading the store at `db` through snapshot copies kept in `workdir` (a
    fresh temporary folder, deleted at shutdown, when None; stale folders of servers that
    died are removed first), run files only under `runs` (default: `runs/` beside the
    store), answering requests whose Host is one of `hosts` (Starlette patterns:
    `*.example.com` allowed), with `today` the day signals are judged stale against.
    StoreError when there is no store at `db`."""
    db = Path(db)
    owned = workdir is None
    if owned:
        remove_stale_folders(Path(tempfile.gettempdir()))
    snapshots = Snapshots(db, workdir)  # None: its own temporary folder

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        snapshots.close(remove_folder=owned)

    app = Starlette(
        routes=ROUTES,
        middleware=[
            Middleware(SecurityHeaders),
            Middleware(TrustedHostMiddleware, allowed_hosts=list(hosts)),
        ],
        exception_handlers={
            HTTPException: http_error,
            StoreBusy: busy,
            StoreError: unreadable,
            Exception: failed,
        },
        lifespan=lifespan,
    )
    app.state.web = pages.WebState(
        db, snapshots, Path(runs) if runs else db.parent / "runs", pages.templates(), today
    )
    return app
