"""The ML Signals web app (`stockml serve`): pages over the store, read through a snapshot.

app       routes, pages, error pages, `serve_forever`
snapshot  the private read-only copy of the store that keeps writers unblocked
queries   every SQL the pages run (read-only, parameterised)
charts    Plotly figures as plain dicts
explain   each feature's effect on the live model's p_win and p_loss (occlusion)
templates/, static/   Jinja2 pages (autoescaped), CSS and the chart-drawing script
"""
