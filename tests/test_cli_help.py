"""Help that tells the truth: `--version`; every default a help text names is the one the
code uses (Click prints the real ones; the few stated in words are checked here against
the code); every command's help ends with an example that parses; no help or README
figure contradicts what the code does."""

from __future__ import annotations

import re
import shlex
from importlib.metadata import version
from pathlib import Path

import pytest
import typer

import stockml
from stockml.cli import app
from tests.cli_support import run_cli

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
FLAT_README = " ".join(README.split())
COMMAND = typer.main.get_command(app)
COMMANDS = sorted(COMMAND.commands)


def help_text(*args: str) -> str:
    """`stockml ARGS --help` as one line of words, without the boxes rich draws."""
    proc = run_cli(*args, "--help")
    assert proc.returncode == 0, proc.stderr
    return " ".join(re.sub("[│╭╮╰╯─]", " ", proc.stdout).split())


def options():
    for name in COMMANDS:
        for param in COMMAND.commands[name].params:
            if param.param_type_name == "option" and param.help:
                yield name, param


def test_version_is_the_installed_version():
    """`stockml --version` prints the version the package was installed as."""
    proc = run_cli("--version")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"stockml {stockml.__version__}"
    assert version("stockml") == stockml.__version__


@pytest.mark.parametrize("name", COMMANDS)
def test_each_command_help_ends_with_an_example_that_parses(name):
    """The last line of `stockml NAME --help` is 'Example: stockml NAME ...', and those
    arguments are accepted by the command's own parser."""
    proc = run_cli(name, "--help", env=None)
    assert proc.returncode == 0, proc.stderr
    text = [line.strip(" │") for line in proc.stdout.splitlines() if line.strip(" │")]
    example = " ".join(text[text.index(next(t for t in text if t.startswith("Example:"))) :])
    assert example.startswith(f"Example: stockml {name} "), text[-3:]
    words = shlex.split(example.removeprefix("Example: ").split("   ")[0])
    shell = [i for i, w in enumerate(words) if w.startswith(("|", ">", "2>", "&", ";"))]
    words = words[: shell[0]] if shell else words  # the shell around the command
    command = COMMAND.commands[name]
    assert words[:2] == ["stockml", name]
    command.make_context(name, words[2:])  # raises click.UsageError if the example is wrong


# Options whose help states a default in words (their Click default is None, so Click has
# nothing to print): each entry checks the words against the code.
def _stated_defaults():
    from backtest.costs import TradeCosts
    from ingest.plan import DEFAULT_START
    from stockml.commands.demo import (
        DEMO_MAX_SAMPLES,
        DEMO_RATE,
        DEMO_YEARS,
        SCALE_MAX_SAMPLES,
        SCALE_YEARS,
    )
    from stockml.memory import MemoryBudget, physical_memory
    from training.config import MIN_TRAIN_YEARS
    from training.models import BASE_MODELS

    costs = TradeCosts()
    quarter = MemoryBudget.of(None).limit == physical_memory() // 4
    return {
        ("ingest", "--start"): f"default: {DEFAULT_START.isoformat()}",
        ("demo", "--years"): f"default {DEMO_YEARS:g}; with --scale, {SCALE_YEARS:g}",
        ("demo", "--rate"): f"default {DEMO_RATE:g}",
        ("demo", "--max-samples"): f"default {DEMO_MAX_SAMPLES:,}; with --scale, "
        f"{SCALE_MAX_SAMPLES:,}",
        ("train", "--models"): "default: all eight: " + ",".join(BASE_MODELS),
        ("backtest", "--memory-limit"): "default: a quarter of RAM" if quarter else "?",
        ("features", "--memory-limit"): "default: a quarter of RAM" if quarter else "?",
        ("train", "--memory-limit"): "default: a quarter of RAM" if quarter else "?",
        ("demo", "--memory-limit"): "default: a quarter of RAM" if quarter else "?",
        # Behaviour, tested where it is built: the newest run (test_cli_reads), the proxy
        # variables (test_ingest_*), RAY_ADDRESS (ray_runner), today, the stdout format.
        ("signals", "--run"): "default: the newest run",
        ("signals", "--profile"): "default: any",
        ("ingest", "--end"): "default: today",
        ("ingest", "--proxy"): "default: $HTTPS_PROXY / $HTTP_PROXY",
        ("train", "--ray-address"): "default $RAY_ADDRESS",
        ("serve-yahoo", "--as-of"): "default today",
        ("serve", "--runs"): "default: runs/ beside the store",
        ("serve", "--allow-host"): "by default only the names of --host",
        ("sql", "--format"): "default: table on a terminal, csv when stdout",
        ("signals", "--format"): "default: table on a terminal, csv when stdout",
        ("train", "--windows"): f"default: every calendar year with {MIN_TRAIN_YEARS} years "
        "of history before it",
        ("train", "--train-symbols"): "default: every stored symbol",
        ("train", "--symbols"): "default: every symbol trained on",
        ("signals", "--symbols"): "default: every stored symbol with a complete feature row",
        ("train", "--option-spread"): f"default {costs.option_spread:g}",
        ("train", "--stock-commission"): f"default {costs.stock_commission:g}",
        ("train", "--slippage"): f"default {costs.stock_slippage:g}",
    }


def test_no_help_names_a_default_the_code_does_not_use():
    """An option with a real default shows it through Click (`[default: X]`, the value
    the code receives); an option whose default is worked out in code (Click's is None)
    states it in words, and those words are checked here against that code."""
    stated = _stated_defaults()
    checked = set()
    for name, param in options():
        if param.default not in (None, [], ()) or "default" not in param.help.lower():
            continue
        key = (name, param.opts[0])
        assert key in stated, f"{name} {param.opts[0]} states a default no test checks"
        assert stated[key] in " ".join(param.help.split()), (key, stated[key], param.help)
        checked.add(key)
    assert checked == set(stated), set(stated) - checked  # no stale entry either


def test_windows_default_is_the_pipelines():
    """`--windows`' Click default is the pipeline's own WINDOWS (every eligible year), and
    the README says which years are eligible."""
    from training.config import MIN_TRAIN_YEARS, WINDOWS

    windows = next(p for p in COMMAND.commands["train"].params if p.name == "windows")
    assert windows.default == WINDOWS is None
    assert f"every calendar year with at least {MIN_TRAIN_YEARS} years" in FLAT_README


def test_train_help_describes_the_stack_it_builds():
    """The final stack is ensemble selection's weighted mean, not a meta-learner."""
    text = help_text("train")
    assert "meta-learner" not in text
    assert "ensemble selection" in text


def test_demo_help_claims_no_wrong_history_or_time():
    """demo --help: the years of history the code simulates, no minutes it cannot keep."""
    from stockml.commands.demo import DEMO_YEARS

    text = help_text("demo")
    assert "default 5;" not in text and "min on 2 cores" not in text
    assert f"(default {DEMO_YEARS:g};" in text


def test_sql_help_lists_every_table_of_a_store(quick_demo_store):
    """Every table a real store holds (the run tables included) is named in sql --help."""
    import duckdb

    con = duckdb.connect(str(quick_demo_store), read_only=True)
    try:
        tables = [r[0] for r in con.execute("SHOW TABLES").fetchall()]
    finally:
        con.close()
    text = help_text("sql")
    listed = text.split("Tables:", 1)[1]
    for table in tables:  # views included
        if not table.startswith("_"):
            assert re.search(rf"\b{table}\b", listed), table
    for run_table in ("training_runs", "model_metrics", "signals", "signal_trades"):
        assert run_table in listed


def test_readme_ingest_defaults_are_fetch_policys():
    """The README's 'Defaults are conservative for Yahoo' sentence is FetchPolicy()."""
    from ingest.policy import FetchPolicy

    policy = FetchPolicy()
    sentence = FLAT_README.split("Defaults are conservative for Yahoo:", 1)[1][:400]
    assert f"`--rate {policy.rate:g}`" in sentence
    assert f"`--concurrency {policy.concurrency}`" in sentence
    assert f"`--timeout {policy.timeout:g}`" in sentence
    assert f"`--retries {policy.retries}`" in sentence


def test_readme_store_tables_are_the_schemas(quick_demo_store):
    """Every table the README's store table names exists in a store, and the reverse (views
    are described apart)."""
    import duckdb

    con = duckdb.connect(str(quick_demo_store), read_only=True)
    try:
        tables = {
            r[0]
            for r in con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE'"
            ).fetchall()
        }
    finally:
        con.close()
    section = README.split("## The store: tables you can query", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"^\| `(\w+)`(?:, `\w+`)? \|", section, re.M))  # not "(view)"
    named |= set(re.findall(r"^\| `\w+`, `(\w+)` \|", section, re.M))
    real = {t for t in tables if not t.startswith("_")}
    assert named == real, (sorted(named - real), sorted(real - named))


def test_readme_fit_counts_are_the_planners():
    """The README's fit count is what the training planner runs for the eight models with
    the default config, whichever candidate tuning chooses: every candidate on the inner
    blocks, then the chosen one on every block and the live fit (a block fit tuning
    already made is reused). The store records as many rows per run in training_fits."""
    import numpy as np

    from stockml.commands.demo import DEMO_YEARS
    from training.config import TrainConfig
    from training.folds import fit_jobs, tuning_jobs
    from training.walkforward import plan_layout

    config = TrainConfig.create("swing")
    # the demo's labelled history: DEMO_YEARS years ending today's year
    dates = np.arange("2014-12-01", f"{2014 + int(DEMO_YEARS)}-11-30", dtype="datetime64[D]")
    lay = plan_layout(dates, config.horizon, config.windows, config.inner_blocks)
    day_index = np.searchsorted(lay.days, dates)
    tuning = {j.name for j in tuning_jobs(config, lay, day_index)}
    counts = set()
    for choice in (0, 1, 2):
        chosen = dict.fromkeys(config.model_names, choice)
        counts.add(len(tuning | {j.name for j in fit_jobs(config, lay, day_index, chosen)}))
    assert len(counts) == 1, counts
    (count,) = counts
    per_model = count // len(config.model_names)
    assert f"{count} fits whichever settings tuning chooses" in FLAT_README
    assert f"{per_model} per model, {count} in all" in FLAT_README
