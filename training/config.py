"""The one value a training run is built from: a frozen, validated `TrainConfig`.

`stockml train`, `--ablation`, the benchmarks and the tests all build a run from a
TrainConfig (`TrainConfig.create(...)` fills the defaults), and nothing that changes what a
run fits or reports lives outside it: the label profile, the recipe (what the run learns
from and how), every base model's settings and its tuning alternatives, the walk-forward
windows, how decision rules are chosen (what is traded and what it costs), the seed, the
sample cap, the training and traded universes, and the code (stockml's version, a digest
of the source of the fit path, the versions of the libraries that fit the models). The
run id is the digest of the config and of the samples
(`training.dataset.Samples.fingerprint`), so a changed setting, an upgrade or new data is a
new run, with fresh fits, and the same config on the same samples resumes its own
checkpoints. Options that change how a run executes but not what it computes (Ray's
address, progress bars, the serial path, the memory limit of the refreshes) are not in it.

Validated on construction, as httpx's `Timeout` validates its arguments: a bad value is an
`InputError` naming it, before any work starts.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any

from backtest.labels import Profile, resolve_profile
from stockml.errors import InputError
from training.rules import RuleSetup

Settings = tuple[tuple[str, Any], ...]  # sorted (key, value) pairs: hashable, JSON-able

# Test windows: every calendar year with MIN_TRAIN_YEARS years of history before it (None);
# a number asks for the last that many years (or, on a history too short for yearly
# windows, that many equal windows over the last TEST_FRACTION of the days; 4 by default).
WINDOWS: int | None = None
MIN_TRAIN_YEARS = 3
# The base models are refitted at every REFIT_EVERY-th test window; the windows between
# are predicted by the fit before them, which was trained on days before its own window
# and so before theirs (training/folds.py). Chosen by benchmarks/bench_refit.py on the
# development universe: at 2 the stack's pooled log loss, rank IC and top-10 % win
# precision stayed within the rule's tolerances of refitting every window, for 0.48 of the
# fit seconds.
REFIT_EVERY = 2
INNER_BLOCKS = 5
TEST_FRACTION = 0.2
SEED = 7


@dataclass(frozen=True)
class Recipe:
    """What a training run learns from and how: the ablation's variables.

    context: the market, sector and cross-sectional columns (features/context.csv) beside
    the 179 catalog features; weights: rows weighted by their label's average uniqueness
    (training/weights.py); select: each stack is the weighted mean ensemble selection
    fits on its training period (training/stacking.py), else a meta-learner reading
    every base model; tune: each base model's settings chosen from a small grid on the
    inner blocks (training/tuning.py)."""

    context: bool = True
    weights: bool = True
    select: bool = True
    tune: bool = True

    def params(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        parts = ["catalog features"]
        if self.context:
            parts.append("context")
        if self.weights:
            parts.append("uniqueness weights")
        if self.tune:
            parts.append("tuned settings")
        if self.select:
            parts.append("ensemble selection")
        return " + ".join(parts)


@dataclass(frozen=True)
class Candidate:
    """One tuning candidate of a model: its settings overrides on top of the model's own
    (none for the default) and whether its rows are weighted by label uniqueness."""

    overrides: Settings = ()
    weighted: bool = True


@dataclass(frozen=True)
class ModelSpec:
    """A base model of the run: its name (a key of `training.models.BASE_MODELS`), every
    setting its factory gets (the defaults with the run's overrides on top) and the
    tuning grid's alternatives (overrides on top of those settings)."""

    name: str
    settings: Settings
    alternatives: tuple[Settings, ...] = ()

    def build_settings(self, candidate: Candidate) -> dict[str, Any]:
        """The factory's keyword settings for `candidate`."""
        return {**dict(self.settings), **dict(candidate.overrides)}


def as_settings(values: dict[str, Any]) -> Settings:
    """A settings dict as sorted pairs (lists become tuples, so the value stays hashable)."""
    return tuple((k, tuple(v) if isinstance(v, list) else v) for k, v in sorted(values.items()))


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides what a training run fits and reports (module docstring).

    Build it with `TrainConfig.create`; `replace(**changes)` gives a validated copy.
    `digest()` is a stable 16-hex-digit name of its content; `params()` a flat dict of it
    (the run folder's params.json and `training_runs.params`)."""

    profile: Profile
    models: tuple[ModelSpec, ...]
    recipe: Recipe = Recipe()
    windows: int | None = WINDOWS
    min_train_years: int = MIN_TRAIN_YEARS
    inner_blocks: int = INNER_BLOCKS
    refit_every: int = REFIT_EVERY
    test_fraction: float = TEST_FRACTION
    rules: RuleSetup = field(default_factory=RuleSetup)
    seed: int = SEED
    max_samples: int | None = None
    # The training universe (None: every stored symbol) and the traded one, whose test rows
    # the evaluation and its trades cover (None: every symbol trained on).
    train_symbols: tuple[str, ...] | None = None
    traded_symbols: tuple[str, ...] | None = None
    code: Settings = field(default_factory=lambda: code_version())

    def __post_init__(self) -> None:
        from training.models import BASE_MODELS, setting_names

        names = [m.name for m in self.models]
        if not names:
            raise InputError("a training run needs at least one base model")
        unknown = [n for n in names if n not in BASE_MODELS]
        if unknown:
            raise InputError(
                f"unknown model {', '.join(unknown)}: choose from {', '.join(BASE_MODELS)}"
            )
        if len(set(names)) != len(names):
            raise InputError(f"a model is named twice in {', '.join(names)}")
        for spec in self.models:
            allowed = setting_names(spec.name)
            for pairs in (spec.settings, *spec.alternatives):
                bad = sorted(k for k, _ in pairs if k not in allowed)
                if bad:
                    raise InputError(
                        f"{spec.name} has no setting {', '.join(bad)} "
                        f"(its settings: {', '.join(sorted(allowed))})"
                    )
        _check(
            self.windows is None or (isinstance(self.windows, int) and 1 <= self.windows <= 100),
            "windows",
            self.windows,
        )
        _check(
            isinstance(self.min_train_years, int) and self.min_train_years >= 1,
            "min_train_years",
            self.min_train_years,
        )
        _check(
            isinstance(self.inner_blocks, int) and self.inner_blocks >= 2,
            "inner_blocks",
            self.inner_blocks,
        )
        _check(
            isinstance(self.refit_every, int) and 1 <= self.refit_every <= 100,
            "refit_every",
            self.refit_every,
        )
        _check(0 < self.test_fraction < 1, "test_fraction", self.test_fraction)
        _check(isinstance(self.rules, RuleSetup), "rules", self.rules)
        _check(isinstance(self.seed, int) and self.seed >= 0, "seed", self.seed)
        _check(
            self.max_samples is None
            or (isinstance(self.max_samples, int) and self.max_samples >= 1),
            "max_samples",
            self.max_samples,
        )
        for name in ("train_symbols", "traded_symbols"):
            value = getattr(self, name)
            _check(
                value is None or (isinstance(value, tuple) and len(value) > 0),
                name,
                value,
            )
        try:
            json.dumps(self.as_dict())
        except (TypeError, ValueError) as exc:
            raise InputError(f"a training setting is not plain data: {exc}") from exc

    @classmethod
    def create(
        cls,
        profile: str | Profile = "swing",
        models: list[str] | None = None,
        settings: dict[str, dict[str, Any]] | None = None,
        **fields: Any,
    ) -> TrainConfig:
        """A config with every default filled in: `profile` a name (see
        `backtest.labels.PROFILES`) or a Profile; `models` a subset of the eight (default:
        all, in `BASE_MODELS` order); `settings` per model, overrides of its defaults
        (`training.models.DEFAULTS`); any other field by keyword (e.g. windows=2,
        recipe=Recipe(tune=False), max_samples=50_000). Raises InputError."""
        from training.models import ALTERNATIVES, BASE_MODELS, settings_of

        chosen = resolve_profile(profile) if isinstance(profile, str) else profile
        names = list(BASE_MODELS) if models is None else list(models)
        settings = settings or {}
        extra = sorted(set(settings) - set(names))
        if extra:
            raise InputError(f"settings given for {', '.join(extra)}, which the run does not fit")
        specs = []
        for name in names:
            if name not in BASE_MODELS:
                raise InputError(f"unknown model {name}: choose from {', '.join(BASE_MODELS)}")
            specs.append(
                ModelSpec(
                    name,
                    as_settings(settings_of(name, **settings.get(name, {}))),
                    tuple(as_settings(alt) for alt in ALTERNATIVES.get(name, [])),
                )
            )
        return cls(chosen, tuple(specs), **fields)

    def replace(self, **changes: Any) -> TrainConfig:
        return replace(self, **changes)

    @property
    def model_names(self) -> list[str]:
        return [m.name for m in self.models]

    @property
    def horizon(self) -> int:
        """The purge: trading days a label looks ahead."""
        return self.profile.hold_days

    def spec(self, name: str) -> ModelSpec:
        return next(m for m in self.models if m.name == name)

    def candidates(self, name: str) -> list[Candidate]:
        """Model `name`'s tuning candidates: its settings as they are (index 0), each
        alternative of the grid, and, when the recipe weights rows, the settings without
        the weights (training/tuning.py says why). Without tuning, only index 0."""
        weighted = self.recipe.weights
        default = Candidate((), weighted)
        if not self.recipe.tune:
            return [default]
        out = [default, *(Candidate(alt, weighted) for alt in self.spec(name).alternatives)]
        if weighted:
            out.append(Candidate((), False))
        return out

    def as_dict(self) -> dict[str, Any]:
        """The whole config as nested plain data (the digest's input)."""
        return {
            "profile": asdict(self.profile),
            "recipe": self.recipe.params(),
            "models": [
                {
                    "name": m.name,
                    "settings": dict(m.settings),
                    "alternatives": [dict(a) for a in m.alternatives],
                }
                for m in self.models
            ],
            "windows": self.windows,
            "min_train_years": self.min_train_years,
            "inner_blocks": self.inner_blocks,
            "refit_every": self.refit_every,
            "test_fraction": self.test_fraction,
            "rules": asdict(self.rules),
            "seed": self.seed,
            "max_samples": self.max_samples,
            "train_symbols": self.train_symbols,
            "traded_symbols": self.traded_symbols,
            "code": dict(self.code),
        }

    def digest(self) -> str:
        text = json.dumps(self.as_dict(), sort_keys=True, default=list)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def fit_digest(self) -> str:
        """The digest of what the base fits depend on: the config less `NOT_FITTED` (the
        rules and the traded universe are chosen and scored after the fits, from their
        predictions). Two runs with one fit digest on one sample make the same fits."""
        fitted = {k: v for k, v in self.as_dict().items() if k not in NOT_FITTED}
        text = json.dumps(fitted, sort_keys=True, default=list)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def params(self) -> dict[str, Any]:
        """The config as one flat mapping of plain values: the recipe's and the run's
        scalars by name, the profile's fields (`profile` is its name), each model's
        settings as `<model>.<setting>` and the code as `code.<part>`."""
        out: dict[str, Any] = {
            "profile": self.profile.name,
            "hold_days": self.profile.hold_days,
            "take_profit": self.profile.take_profit,
            "stop_loss": self.profile.stop_loss,
            **self.recipe.params(),
            "models": ",".join(self.model_names),
            "windows": self.windows,
            "min_train_years": self.min_train_years,
            "inner_blocks": self.inner_blocks,
            "refit_every": self.refit_every,
            "test_fraction": self.test_fraction,
            **{f"rules.{k}": v for k, v in _flat(asdict(self.rules)).items()},
            "seed": self.seed,
            "max_samples": self.max_samples,
            "train_symbols": ",".join(self.train_symbols) if self.train_symbols else None,
            "traded_symbols": ",".join(self.traded_symbols) if self.traded_symbols else None,
            "config_digest": self.digest(),
            "fit_digest": self.fit_digest(),
        }
        for spec in self.models:
            for key, value in spec.settings:
                out[f"{spec.name}.{key}"] = list(value) if isinstance(value, tuple) else value
        for key, value in self.code:
            out[f"code.{key}"] = value
        return out


def _flat(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested dict as one level, keys joined with dots."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _check(ok: bool, name: str, value: Any) -> None:
    if not ok:
        raise InputError(f"bad training setting {name}: {value!r}")


# Config fields the base fits do not read: a run differing from another only in these (the
# decision rules' costs and trade type, the symbols traded and scored) reuses its fits.
NOT_FITTED = ("rules", "traded_symbols")

# The modules that decide what a fit is and what it returns: which rows (dataset, sampling,
# walkforward, split, folds), their weights, the models, the task that fits them and the
# checkpoints it writes (recorder), and this config. A change to any of them is a new run
# with fresh fits. The stacks, rules, metrics and report are recomputed from the
# checkpoints on every run (training/pipeline.py), and tuning's choice is re-read from the
# candidates' own fits, so a change there re-scores a finished run without refitting it.
FIT_PATH = (
    "binning.py",
    "config.py",
    "dataset.py",
    "folds.py",
    "impute.py",
    "models.py",
    "ray_runner.py",
    "recorder.py",
    "sampling.py",
    "split.py",
    "walkforward.py",
    "weights.py",
)


@cache
def code_version() -> Settings:
    """(part, version) pairs of what fits a run: stockml's version, the first 12 hex
    digits of the SHA-256 of the fit path's source files (`FIT_PATH`), and the versions of
    the libraries whose fits it checkpoints."""
    from stockml import __version__

    digest = hashlib.sha256()
    for name in FIT_PATH:
        digest.update(name.encode())
        digest.update((Path(__file__).parent / name).read_bytes())
    parts = {"stockml": __version__, "source": digest.hexdigest()[:12]}
    # xgboost's distribution here is xgboost-cpu (the same package without CUDA).
    for package, names in (
        ("scikit-learn", ("scikit-learn",)),
        ("lightgbm", ("lightgbm",)),
        ("xgboost", ("xgboost", "xgboost-cpu")),
        ("numpy", ("numpy",)),
    ):
        parts[package] = next((v for v in map(_installed, names) if v), "?")
    return tuple(sorted(parts.items()))


def _installed(distribution: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None
