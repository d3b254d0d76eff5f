"""The ML Signals web app (`stockml serve`): pages over the store, read through a snapshot.

app        the Starlette app: routes, middleware (trusted hosts, security headers), errors
pages      the request handlers, at module level, reading `app.state.web`
views      each page's data, built from query results (no HTTP, no SQL)
queries    every SQL the pages run (read-only, parameterised)
charts     Plotly figures as plain dicts
run_files  the one reader of run folders (the report's plots), below the runs folder only
snapshot   the private read-only copy of the store that keeps writers unblocked
server     the socket, the host names answered, the server's log, uvicorn
templates/, static/   Jinja2 pages (autoescaped), CSS and the chart-drawing script
"""
