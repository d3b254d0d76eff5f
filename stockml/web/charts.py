"""Plotly figures as plain dicts ({"data": [...], "layout": {...}}) for the pages.

The browser draws them with the plotly.js that ships inside the `plotly` Python package
(served by the app from that package: no CDN). Building the dicts directly, rather than
through `plotly.graph_objects`, keeps a page render in milliseconds; the keys are
plotly.js's own (https://plotly.com/javascript/reference/). Values must be JSON-ready:
lists of floats/str, None for gaps.

Plotly draws text (names, category labels, hover text) as a small HTML subset, `<a href>`
included, whatever the page's own escaping: every stored string a figure carries goes
through `text`, which escapes `&`, `<` and `>` as entities plotly shows literally.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from stockml.web.trading import outcome_for_trader

Figure = dict[str, Any]

# Outcome colours from the trader's side (trading.outcome_for_trader): a put's stop is green.
OUTCOME_COLOUR = {"gain": "#1a9850", "loss": "#d73027", "flat": "#878787", "open": "#878787"}
SIGNAL_SYMBOL = {"BUY CALL": "triangle-up", "BUY PUT": "triangle-down"}


def text(value) -> str:
    """A stored value as plotly text: shown as it is, never read as markup."""
    return str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _floats(values) -> list[float | None]:
    return [None if not np.isfinite(v) else float(v) for v in np.asarray(values, np.float64)]


def floats_or_text(values) -> list:
    """An array as JSON-ready values: floats (None for NaN), or text for anything else."""
    values = np.asarray(values)
    if values.dtype.kind in "fiu":
        return _floats(values)
    return [str(v) for v in values]


def _percent(value: float | None) -> str:
    return "–" if value is None or not np.isfinite(value) else f"{value:+.2%}"


def _dates(values) -> list[str]:
    return [str(d)[:10] for d in values]


def _layout(title: str, **extra) -> dict[str, Any]:
    layout = {
        "title": {"text": title, "font": {"size": 15}},
        "margin": {"l": 55, "r": 20, "t": 40, "b": 40},
        "legend": {"orientation": "h", "y": -0.15},
        "hovermode": "x unified",
        "paper_bgcolor": "white",
        "plot_bgcolor": "white",
    }
    layout.update(extra)
    return layout


def moving_average(close: np.ndarray, days: int) -> np.ndarray:
    """Simple moving average of `close` over `days` bars; NaN for the first days - 1."""
    out = np.full(len(close), np.nan)
    if len(close) >= days:
        sums = np.cumsum(np.insert(close.astype(np.float64), 0, 0.0))
        out[days - 1 :] = (sums[days:] - sums[:-days]) / days
    return out


def price_chart(bars: dict[str, np.ndarray], trades: list[dict]) -> Figure:
    """Candles with 20- and 50-day moving averages and 20-day Bollinger bands (of the
    close), volume below, and each walk-forward trade marked at its signal day's close:
    ▲ call, ▼ put, coloured by its outcome from the trader's side (green a gain: a call's
    target, a put's stop; red a loss; grey the hold limit)."""
    dates = _dates(bars["date"])
    close = bars["close"].astype(np.float64)
    sma20, sma50 = moving_average(close, 20), moving_average(close, 50)
    std20 = np.full(len(close), np.nan)
    if len(close) >= 20:
        windows = np.lib.stride_tricks.sliding_window_view(close, 20)
        std20[19:] = windows.std(axis=1)
    data: list[dict[str, Any]] = [
        {
            "type": "candlestick",
            "name": "price",
            "x": dates,
            "open": _floats(bars["open"]),
            "high": _floats(bars["high"]),
            "low": _floats(bars["low"]),
            "close": _floats(close),
            "yaxis": "y",
        },
        _line("SMA 20", dates, sma20, "#ff7f0e"),
        _line("SMA 50", dates, sma50, "#1f77b4"),
        _line("Bollinger 20 upper", dates, sma20 + 2 * std20, "#bbbbbb", dash="dot"),
        _line("Bollinger 20 lower", dates, sma20 - 2 * std20, "#bbbbbb", dash="dot"),
        {
            "type": "bar",
            "name": "volume",
            "x": dates,
            "y": _floats(bars["volume"]),
            "yaxis": "y2",
            "marker": {"color": "#9ecae1"},
            "showlegend": False,
        },
    ]
    by_date = dict(zip(dates, close, strict=True))
    for signal, marker in SIGNAL_SYMBOL.items():
        for outcome in (1, -1, 0):
            chosen = [t for t in trades if t["signal"] == signal and t["outcome"] == outcome]
            if not chosen:
                continue
            label, kind = outcome_for_trader(signal, outcome)
            xs = [str(t["date"]) for t in chosen]
            data.append(
                {
                    "type": "scatter",
                    "mode": "markers",
                    "name": f"{signal} → {label} ({kind})",
                    "x": xs,
                    "y": _floats([by_date.get(x, np.nan) for x in xs]),
                    "marker": {
                        "symbol": marker,
                        "size": 11,
                        "color": OUTCOME_COLOUR[kind],
                        "line": {"width": 1, "color": "black"},
                    },
                    "yaxis": "y",
                    "text": [
                        text(
                            f"{t['profile']} window {t['window']}: exit {t['exit_date']}, "
                            f"{t['days_held']} days, stock {_percent(t['stock_return'])}, "
                            f"option {_percent(t['option_return'])} after costs"
                        )
                        for t in chosen
                    ],
                }
            )
    layout = _layout(
        "price, moving averages, volume and past signals",
        height=560,
        xaxis={"rangeslider": {"visible": False}, "type": "date"},
        yaxis={"domain": [0.28, 1.0], "title": {"text": "price"}},
        yaxis2={"domain": [0.0, 0.22], "title": {"text": "volume"}},
    )
    return {"data": data, "layout": layout}


def _line(name: str, x: list, y, colour: str, dash: str = "solid", axis: str = "y") -> dict:
    return {
        "type": "scatter",
        "mode": "lines",
        "name": name,
        "x": x,
        "y": _floats(y),
        "line": {"color": colour, "width": 1.3, "dash": dash},
        "yaxis": axis,
    }


def contributions_chart(win: list[dict], loss: list[dict]) -> Figure:
    """Two horizontal bar groups: each top feature's contribution to win and to loss
    (rows with `feature` and `contribution`, largest first)."""
    data = []
    for title, items, colour, axis in (
        ("toward win", win, "#1a9850", "x"),
        ("toward loss", loss, "#d73027", "x2"),
    ):
        data.append(
            {
                "type": "bar",
                "orientation": "h",
                "name": title,
                "y": [text(c["feature"]) for c in reversed(items)],
                "x": [c["contribution"] for c in reversed(items)],
                "marker": {"color": colour},
                "xaxis": axis,
                "yaxis": "y" if axis == "x" else "y2",
            }
        )
    layout = _layout(
        "largest contributions (probability points, whole live model)",
        height=380,
        hovermode="closest",
        xaxis={"domain": [0.0, 0.44], "title": {"text": "p_win"}},
        xaxis2={"domain": [0.56, 1.0], "title": {"text": "p_loss"}},
        yaxis={"anchor": "x", "automargin": True},
        yaxis2={"anchor": "x2", "automargin": True},
        margin={"l": 10, "r": 10, "t": 40, "b": 40},
    )
    return {"data": data, "layout": layout}


def window_order(windows) -> list[str]:
    """Walk-forward windows in order: numbered ones by number, any other name after them
    by text ('pooled' and 'live', the rule `stockml signals` applies, left out), so a
    stored window that is not a number cannot break a page."""
    named = [str(w) for w in windows if w not in ("pooled", "live")]
    return sorted(named, key=lambda w: (not w.isdigit(), int(w) if w.isdigit() else 0, w))


def window_chart(metrics: dict, metric: str, models: list[str], title: str) -> Figure:
    """`metric` per walk-forward window (x) for each model (one line each)."""
    windows = window_order(metrics)
    data = [
        {
            "type": "scatter",
            "mode": "lines+markers",
            "name": text(model),
            "x": [text(f"window {w}") for w in windows],
            "y": _floats([metrics[w].get(model, {}).get(metric, np.nan) for w in windows]),
        }
        for model in models
        if any(model in metrics[w] for w in windows)
    ]
    return {"data": data, "layout": _layout(title, height=340, hovermode="closest")}


def pooled_chart(pooled: dict, metric: str, title: str) -> Figure:
    """One bar per model/baseline of the pooled test rows, the stack highlighted."""
    names = [m for m in pooled if metric in pooled[m]]
    return {
        "data": [
            {
                "type": "bar",
                "x": [text(m) for m in names],
                "y": _floats([pooled[m][metric] for m in names]),
                "marker": {"color": ["#d62728" if m == "stack" else "#7f7f7f" for m in names]},
                "name": metric,
            }
        ],
        "layout": _layout(title, height=340, hovermode="closest", xaxis={"automargin": True}),
    }


def brier_chart(metrics: dict, classes: list[str]) -> Figure:
    """Calibration: the stack's Brier score per class and window beside the class prior's
    (lower is better; a stack above its prior is worse than always saying the base rate)."""
    windows = window_order(metrics) + (["pooled"] if "pooled" in metrics else [])
    data = []
    for model, dash in (("stack", "solid"), ("baseline_prior", "dot")):
        for name in classes:
            data.append(
                {
                    "type": "scatter",
                    "mode": "lines+markers",
                    "name": f"{model} {name}",
                    "x": [text(w) for w in windows],
                    "y": _floats(
                        [metrics[w].get(model, {}).get(f"brier_{name}", np.nan) for w in windows]
                    ),
                    "line": {"dash": dash},
                }
            )
    return {
        "data": data,
        "layout": _layout(
            "Brier score per class (stack vs prior)",
            height=340,
            hovermode="closest",
            xaxis={"type": "category", "title": {"text": "test window"}},
        ),
    }


CURVE_NAMES = {
    "stack": "stack",
    "baseline_volatility": "natr_14 ranking",
    "baseline_best_base": "best single model",
    "baseline_hold_universe": "hold the universe",
}
SIDE_COLOUR = {"call": "#1a9850", "put": "#d73027", "both": "#6b7280"}
CURVE_DASH = {"stack": "solid", "baseline_volatility": "dash", "baseline_best_base": "dot"}


def equity_chart(curves: list[dict]) -> Figure:
    """The run's equity curves as stored in `equity_curves` (trading.equity_curves): equity
    in multiples of the starting capital above, its drawdown below; one colour per side,
    the stack solid, the natr_14 ranking dashed, the best single model dotted, the universe
    held grey. The one equity definition: the report's equity.png draws the same rows."""
    data = []
    for curve in curves:
        side, model = curve["side"], curve["model"]
        name = CURVE_NAMES.get(model, model)
        label = text(name if side == "both" else f"{side} {name}")
        colour = SIDE_COLOUR.get(side, "#6b7280")
        dash = CURVE_DASH.get(model, "solid")
        x = [str(d) for d in curve["date"]]
        data.append(_line(label, x, curve["equity"], colour, dash=dash) | {"legendgroup": label})
        data.append(
            _line(label, x, curve["drawdown"], colour, dash=dash, axis="y2")
            | {"legendgroup": label, "showlegend": False}
        )
    layout = _layout(
        "equity of the placed trades (x starting capital) and drawdown",
        height=460,
        hovermode="closest",
        yaxis={"domain": [0.34, 1.0], "title": {"text": "equity"}},
        yaxis2={"domain": [0.0, 0.26], "title": {"text": "drawdown"}, "tickformat": ".0%"},
    )
    return {"data": data, "layout": layout}
