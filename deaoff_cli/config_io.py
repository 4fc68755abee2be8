"""Reading the command line's YAML/JSON options: one parser for train.py, evaluate.py and main.py.

Every problem is a :class:`CLIError` (a ``ValueError``) with a one-line message that
names the option; the scripts print it as ``error: ...`` and exit 2.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Mapping

import yaml


class CLIError(ValueError):
    """Bad input from the user: reported in one line, exit code 2."""


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())


def _first_null(data: Any, where: str = "") -> str | None:
    """The dotted key of the first null value in ``data`` (None if there is none)."""
    if isinstance(data, Mapping):
        for key, value in data.items():
            path = f"{where}.{key}" if where else str(key)
            found = path if value is None else _first_null(value, path)
            if found is not None:
                return found
    return None


def parse_inline(text: str, what: str) -> Any:
    """An inline mapping: JSON, or a YAML flow mapping such as ``{new_tokens: 2}``.

    A text that is not JSON but parses as YAML with an empty value (``{"model": }``) is
    a mistake, not a null setting: it is reported with the JSON parser's message.
    """
    try:
        return json.loads(text)
    except json.JSONDecodeError as json_exc:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise CLIError(f"{what}: not valid JSON or YAML ({_one_line(exc)})") from None
        missing = _first_null(data)
        if missing is not None:
            raise CLIError(f"{what}: not valid JSON ({json_exc.msg} at column {json_exc.colno}) and, read as "
                           f"YAML, key {missing!r} has no value") from None
        return data


def read_mapping(value: str | Path | Mapping[str, Any], what: str, *, empty_ok: bool = True) -> dict[str, Any]:
    """A mapping given inline (a string starting with ``{``), as a YAML/JSON file path, or
    already as a mapping."""
    if isinstance(value, Mapping):
        return dict(value)
    inline = isinstance(value, str) and value.lstrip().startswith("{")
    if inline:
        data = parse_inline(value, what)
    else:
        path = Path(value)
        if not path.is_file():
            raise CLIError(f"{what}: file not found: {value}")
        try:
            data = yaml.safe_load(path.read_text())
        except yaml.YAMLError as exc:
            raise CLIError(f"{what} {path}: not valid YAML/JSON ({_one_line(exc)})") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise CLIError(f"{what} {path}: cannot read ({_one_line(exc)})") from None
    if data is None and empty_ok:
        return {}
    if not isinstance(data, dict):
        raise CLIError(f"{what}: expected a mapping, got {type(data).__name__}")
    return data


NAME_KEYS = {
    "model": "a preset name or the path of a Hugging Face config.json",
    "scenario": "a preset name (configs/scenarios) or the path of a scenario YAML file",
}


def check_env_config_names(env_config: Mapping[str, Any], what: str = "env config") -> None:
    """``model`` and ``scenario`` name a preset or a file: a mapping in their place (an
    inline scenario) is rejected here, with what to do instead, before the env is built.
    An empty value (``model:`` in a YAML file) is an error too, not the preset ``'None'``."""
    for key, meaning in NAME_KEYS.items():
        if key in env_config and env_config[key] is None:
            raise CLIError(f"{what}: {key} has no value; it must be {meaning}")
        value = env_config.get(key)
        if value is not None and not isinstance(value, str):
            hint = (" (write the mapping to a .yaml file and pass its path)" if isinstance(value, Mapping) else "")
            raise CLIError(f"{what}: {key} must be {meaning}, got a {type(value).__name__}{hint}")


def positive_finite(value: float, name: str) -> float:
    """``value`` if it is a finite number > 0, else a CLIError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise CLIError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)
