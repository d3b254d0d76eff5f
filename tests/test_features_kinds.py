"""Kernel kinds: every Kind has a branch in the compiled dispatcher, and a kind that is not
a Kind is refused when the catalog is built, not turned into NaN columns at run time."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from features.catalog import FEATURES, Feature, load_catalog
from features.kinds import Kind
from tests.test_features_properties import bars_frame, random_walk


def test_every_kind_is_dispatched():
    """Each Kind, with the numbers of a catalog feature of that kind, gives finite values
    after warm-up: no Kind falls through to the dispatcher's NaN fallback."""
    from features.compute import adjust_bars, offsets_of
    from features.kernels import compute_all_nb

    first_of = {}
    for feature in FEATURES:
        first_of.setdefault(feature.kind, feature)
    assert set(first_of) == set(Kind), "a Kind no catalog feature uses"
    kinds = np.array([k.value for k in Kind], dtype=np.int64)
    params = np.array([first_of[k].numbers for k in Kind], dtype=np.float64)
    adjusted = adjust_bars(bars_frame(random_walk(400, 5), seed=5))
    arrays = [
        np.ascontiguousarray(adjusted[c].to_numpy(), dtype=np.float64)
        for c in ("open", "high", "low", "close", "volume")
    ]
    out = np.empty((len(kinds), adjusted.height))
    compute_all_nb(*arrays, offsets_of(adjusted["symbol"]), kinds, params, out)
    empty = [k.name for k, row in zip(Kind, out, strict=True) if not np.isfinite(row).any()]
    assert empty == []


def _feature(kind: object) -> Feature:
    return Feature("x_14", "test", "", "", 14, "formula", kind, (14.0, 0.0, 0.0))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda tmp: _feature(len(Kind)), "is not a features.kinds.Kind"),
        (lambda tmp: _feature("rsi"), "is not a features.kinds.Kind"),
        (lambda tmp: _feature(None), "is not a features.kinds.Kind"),
        (lambda tmp: load_catalog(_csv(tmp, "no_such_indicator_5")), "has no kernel recipe"),
    ],
    ids=["number-past-the-enum", "bare-name", "missing", "name-without-recipe"],
)
def test_unknown_kind_is_refused_when_the_catalog_is_built(tmp_path, build, message):
    """A kind the dispatcher has no branch for is a ValueError while the catalog is built."""
    with pytest.raises(ValueError, match=message):
        build(tmp_path)


def test_a_known_kind_builds():
    """The same constructor accepts a Kind member (the table above fails for the kind alone)."""
    assert _feature(Kind.RSI).kind is Kind.RSI


def _csv(folder: Path, name: str) -> Path:
    path = folder / "catalog.csv"
    path.write_text(
        f"name,family,formula,params,lookback,talib_reference\n{name},test,x,n=5,5,formula\n",
        encoding="utf-8",
    )
    return path
