"""The README as a user reads it: every ```python block runs as written, every ```yaml block
is a valid scenario / suite / environment config, every command of a ```bash block names
files that exist and options its script accepts, and the scenario-key table matches the
dataclasses.

Python blocks run in a subprocess each, from an empty temporary directory, with the
repository on PYTHONPATH (as a user with the project installed would run them).  Bash
blocks are not executed (training takes minutes); their options are checked against each
script's ``--help``.
"""
from __future__ import annotations

import dataclasses
import os
import re
import shlex
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```[ \t]*$", re.M | re.S)


def blocks(lang: str) -> list[str]:
    return [body for kind, body in FENCE.findall(README) if kind == lang]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONSTARTUP")}
    env["PYTHONPATH"] = str(ROOT)
    env.setdefault("MPLBACKEND", "Agg")
    return env


# ----- the opening ----------------------------------------------------------------------------
def test_readme_opens_with_the_two_commands():
    kind, body = FENCE.findall(README)[0]
    assert kind == "bash"
    assert body.splitlines() == ["bash scripts/setup.sh && .venv/bin/python main.py",
                                 "bash scripts/setup.sh && .venv/bin/python -m pytest"]
    before = README[: README.index("```")]
    assert before.strip().startswith("# deaoff-gym") and before.count("\n") <= 3


def test_readme_cites_no_file_outside_the_repository():
    assert "reference.md" not in README and "../shared" not in README and "/work/" not in README


def test_readme_states_deaoff_full_text_unavailable():
    assert "DeAOff's full text was not available to us" in README
    assert (ROOT / "docs" / "system-model.md").is_file() and "docs/system-model.md" in README


def test_readme_tells_no_history():
    for phrase in ("issue 3", "issue 5", "issue ", "before this session", "targets"):
        assert phrase not in README.lower(), phrase


# ----- python blocks --------------------------------------------------------------------------
PYTHON_BLOCKS = blocks("python")


def test_readme_has_python_examples():
    assert len(PYTHON_BLOCKS) >= 3


@pytest.mark.parametrize("index", range(len(PYTHON_BLOCKS)))
def test_python_block_runs(index, tmp_path):
    code = PYTHON_BLOCKS[index]
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=_env(), capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, f"README python block {index} failed:\n{code}\n{proc.stderr[-3000:]}"
    assert proc.stdout.strip(), "the example prints nothing"


# ----- yaml blocks ----------------------------------------------------------------------------
def _yaml_blocks() -> list[dict]:
    out = []
    for body in blocks("yaml"):
        data = yaml.safe_load(body)
        assert isinstance(data, dict), body
        out.append(data)
    return out


def test_yaml_blocks_are_valid_configs():
    """Each YAML example is a scenario, a static suite or an environment config that the
    project's own loaders accept."""
    from core.system import Scenario
    from deaoff_cli.evaluate import StaticSuite
    from envs.offload_env import EnvConfig

    kinds = []
    for data in _yaml_blocks():
        if "servers" in data or "device" in data:
            Scenario.from_dict(data)
            kinds.append("scenario")
        elif "models" in data:
            StaticSuite(**data)
            kinds.append("suite")
        else:
            EnvConfig.from_dict(data)
            kinds.append("env")
    assert sorted(kinds) == ["env", "scenario", "suite"]


def test_scenario_key_table_matches_the_dataclasses():
    """The README's scenario-key table lists exactly the fields of Scenario, DeviceConfig
    and ServerConfig (a field added to the code must be documented)."""
    from core.system import DeviceConfig, Scenario, ServerConfig

    listed = set(re.findall(r"^\| `([\w.\[\]]+)` \|", README, re.M))
    expected = {f.name for f in dataclasses.fields(Scenario) if f.name not in ("device", "servers")}
    expected |= {f"device.{f.name}" for f in dataclasses.fields(DeviceConfig)}
    expected |= {f"servers[].{f.name}" for f in dataclasses.fields(ServerConfig)}
    assert listed == expected, (f"missing from the README: {sorted(expected - listed)}; "
                                f"not in the code: {sorted(listed - expected)}")


# ----- bash blocks ----------------------------------------------------------------------------
SCRIPTS = {"train.py": "deaoff_cli.train", "evaluate.py": "deaoff_cli.evaluate", "main.py": "deaoff_cli.main",
           "deaoff-train": "deaoff_cli.train", "deaoff-evaluate": "deaoff_cli.evaluate",
           "deaoff-main": "deaoff_cli.main"}
SUBCOMMANDS = {"deaoff_cli.evaluate": ("static", "agents", "calibration", "predict", "multi")}


def bash_commands() -> list[list[str]]:
    """Each command of the README's bash blocks as tokens (comments, continuations and
    ``&&`` chains resolved)."""
    commands = []
    for body in blocks("bash"):
        text = re.sub(r"\\\n\s*", " ", body)
        for line in text.splitlines():
            line = line.split(" #", 1)[0] if not line.lstrip().startswith("#") else ""
            for part in re.split(r"&&|;|\|", line):
                if part.strip():
                    commands.append(shlex.split(part.replace("<", "").replace(">", "")))
    return commands


def inline_commands() -> list[list[str]]:
    """Commands quoted inline in the prose (`python evaluate.py static --quick ...`): the
    commands that make the measured figures."""
    spans = re.findall(r"`((?:\.venv/bin/)?python [^`]+)`", FENCE.sub("", README))
    return [shlex.split(span.replace("<", "").replace(">", "")) for span in spans]


def all_commands() -> list[list[str]]:
    return bash_commands() + inline_commands()


def _invocation(tokens: list[str]) -> tuple[str, str | None, list[str]] | None:
    """(module or script path, subcommand, options) of a project command, else None."""
    for i, tok in enumerate(tokens):
        name = tok.rsplit("/", 1)[-1] if tok.startswith(".venv/bin/deaoff-") else tok
        if name in SCRIPTS or (tok.startswith("benchmarks/") and tok.endswith(".py")):
            target = SCRIPTS.get(name, tok)
            rest = tokens[i + 1:]
            sub = rest[0] if target in SUBCOMMANDS and rest and not rest[0].startswith("-") else None
            options = [t.strip("[]").split("=", 1)[0] for t in rest if t.strip("[]").startswith("-")]
            return target, sub, options
    return None


def _help(target: str, sub: str | None) -> str:
    if target.endswith(".py"):
        argv = [sys.executable, str(ROOT / target), "--help"]
    else:
        args = ([sub] if sub else []) + ["--help"]
        argv = [sys.executable, "-c", f"import sys, {target} as m; sys.exit(m.main({args!r}))"]
    proc = subprocess.run(argv, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"{target} {sub or ''} --help failed: {proc.stderr[-2000:]}"
    return proc.stdout


@pytest.fixture(scope="module")
def help_texts() -> dict[tuple[str, str | None], str]:
    keys = sorted({(t, s) for t, s, _ in filter(None, map(_invocation, all_commands()))}, key=str)
    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip(keys, pool.map(lambda key: _help(*key), keys)))


def test_commands_use_existing_scripts_and_options(help_texts):
    """Every project command in a bash block or quoted in the prose names options its script
    accepts."""
    checked, problems = 0, []
    for tokens in all_commands():
        inv = _invocation(tokens)
        if inv is None:
            continue
        target, sub, options = inv
        text = help_texts[(target, sub)]
        if target in SUBCOMMANDS and sub not in SUBCOMMANDS[target]:
            problems.append(f"{' '.join(tokens)}: unknown subcommand {sub!r}")
        for opt in options:
            if not re.search(rf"(?<![\w-]){re.escape(opt)}(?![\w-])", text):
                problems.append(f"{' '.join(tokens)}: {opt} is not an option of {target} {sub or ''}")
        checked += 1
    assert checked >= 25, checked
    assert not problems, "\n".join(problems)


def test_bash_blocks_reference_existing_files():
    """Repository paths in commands exist (user files such as my-suite.yaml excepted)."""
    missing = []
    for tokens in all_commands():
        for tok in tokens:
            if re.match(r"^(scripts|benchmarks|configs)/[\w./-]+$", tok) or tok in ("train.py", "evaluate.py",
                                                                                    "main.py"):
                if not (ROOT / tok).exists():
                    missing.append(tok)
    assert not missing, missing


def test_presets_named_in_readme_exist():
    """Model and scenario presets the README names or uses are shipped."""
    from core.models import list_presets
    from core.system import list_scenarios

    for name in ("gpt2", "qwen2.5-0.5b", "llama-3.2-1b", "llama-2-7b", "mistral-7b"):
        assert f"`{name}`" in README and name in list_presets()
    used = set()
    for tokens in bash_commands():
        used |= {b for a, b in zip(tokens, tokens[1:]) if a == "--scenario"}
    used |= set(re.findall(r"load_scenario\(\"([\w-]+)\"\)", README))
    assert used and used <= set(list_scenarios()) | {"my-scenario.yaml"}, used
