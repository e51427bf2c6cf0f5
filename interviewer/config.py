"""Settings: the one place that reads the environment (and an optional ``.env`` file).

Every other module receives a :class:`Settings`; none calls ``os.getenv``.
"""

from __future__ import annotations

import ipaddress
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal, get_args, get_type_hints

APP_NAME = "llm-interviewer"
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
SAVED_FIELDS = ("model", "base_url", "lang", "feedback", "notes_dirs", "plan")  # what the settings tab keeps across restarts
CHOICES = ("lang", "feedback")  # fields whose Literal type lists the allowed values


def default_data_dir(env: Mapping[str, str]) -> Path:
    """The user's data directory (XDG on Linux), unless overridden."""
    base = env.get("XDG_DATA_HOME") or str(Path(env.get("HOME", str(Path.home()))) / ".local" / "share")
    return Path(base) / APP_NAME


def read_dotenv(path: Path) -> dict[str, str]:
    """Parse ``KEY=VALUE`` lines (``#`` comments, optional quotes). Missing file → {}."""
    if not path.is_file():
        return {}
    values = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.removeprefix("export ").partition("=")
        values[key.strip()] = value.strip().strip("'\"")
    return values


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Settings:
    """Everything configurable. Build it with :meth:`from_env`; change it with :meth:`with_`."""

    model: str = "offline"
    """Chat model name (``gpt-4o-mini``, ``deepseek-chat``, ``qwen-plus`` …) or ``offline``."""
    base_url: str = ""
    """OpenAI-compatible endpoint; empty means the provider's default."""
    provider: str = "openai"
    """Which registered model provider builds the model (``interviewer.models``); ``openai`` covers every
    OpenAI-compatible server."""
    api_key: str = field(default="", repr=False)
    """Never logged, stored or exported (``repr`` hides it)."""
    temperature: float = 0.2
    timeout_s: float = 20.0
    """Per model request."""
    max_retries: int = 1
    turn_deadline_s: float = 30.0
    """The longest a candidate waits for a turn before the offline fallback answers."""
    data_dir: Path = field(default_factory=lambda: default_data_dir(os.environ))
    notes_dirs: tuple[Path, ...] = ()
    """The candidate's own notes folders, indexed next to the built-in notes."""
    lang: Literal["zh", "en"] = "zh"
    host: str = "127.0.0.1"
    port: int = 7860
    password: str = field(default="", repr=False)
    """Required when ``host`` is not a loopback address."""
    chroma_host: str = ""
    chroma_port: int = 8000
    feedback: Literal["each", "end"] = "each"
    """Show the grade after each answer, or only in the final report."""
    plan: str = "seed_mock"
    prefetch: bool = True
    """With a model: word the likely next follow-up while the answer is graded (two calls at once)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "data_dir", Path(self.data_dir))
        object.__setattr__(self, "notes_dirs", tuple(Path(p) for p in self.notes_dirs))
        self.validate()  # however it is built, a Settings never listens beyond loopback without a password

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, dotenv: Path | None = Path(".env")) -> Settings:
        """Read settings from ``env`` (default ``os.environ``) over an optional ``.env`` file."""
        env = dict(os.environ if env is None else env)
        merged = {**(read_dotenv(dotenv) if dotenv else {}), **env}
        get = merged.get
        notes = tuple(Path(p).expanduser() for p in get("INTERVIEWER_NOTES", "").split(os.pathsep) if p.strip())
        settings = cls(
            model=get("INTERVIEWER_MODEL", "").strip() or "offline",
            base_url=get("OPENAI_BASE_URL", "").strip(),
            provider=get("INTERVIEWER_PROVIDER", "openai").strip() or "openai",
            api_key=get("OPENAI_API_KEY", "").strip(),
            temperature=float(get("INTERVIEWER_TEMPERATURE", "0.2")),
            timeout_s=float(get("INTERVIEWER_TIMEOUT", "20")),
            max_retries=int(get("INTERVIEWER_MAX_RETRIES", "1")),
            turn_deadline_s=float(get("INTERVIEWER_TURN_DEADLINE", "30")),
            data_dir=Path(get("INTERVIEWER_DATA_DIR") or default_data_dir(merged)).expanduser(),
            notes_dirs=notes,
            lang="en" if get("INTERVIEWER_LANG", "zh").lower().startswith("en") else "zh",
            host=get("INTERVIEWER_HOST", "127.0.0.1"),
            port=int(get("INTERVIEWER_PORT", "7860")),
            password=get("INTERVIEWER_PASSWORD", ""),
            chroma_host=get("CHROMA_HOST", ""),
            chroma_port=int(get("CHROMA_PORT", "8000")),
            feedback="end" if get("INTERVIEWER_FEEDBACK", "each") == "end" else "each",
            plan=get("INTERVIEWER_PLAN", "seed_mock"),
            prefetch=get("INTERVIEWER_PREFETCH", "1").strip().lower() not in ("0", "false", "off", "no"),
        )
        settings.validate()
        return settings


    def with_(self, **changes) -> Settings:
        new = replace(self, **changes)
        new.validate()
        return new

    def validate(self) -> None:
        if not is_loopback(self.host) and not self.password:
            raise ValueError(
                f"refusing to listen on {self.host}: set INTERVIEWER_PASSWORD to expose the app beyond this machine"
            )
        if not 0 < self.port < 65536:
            raise ValueError(f"port {self.port} is out of range")
        hints = get_type_hints(Settings)
        for name in CHOICES:
            allowed = get_args(hints[name])
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {'|'.join(allowed)}, not {getattr(self, name)!r}")

    @property
    def offline(self) -> bool:
        """No LLM: no model named, or neither a key nor an endpoint to call it with."""
        return self.model.lower() == "offline" or (self.provider == "openai" and not (self.api_key or self.base_url))

    @property
    def model_label(self) -> str:
        return "offline" if self.offline else self.model

    @property
    def index_dir(self) -> Path:
        return self.data_dir / "index"

    @property
    def db_path(self) -> Path:
        return self.data_dir / "sessions.sqlite"

    @property
    def ledger_path(self) -> Path:
        return self.data_dir / "ledger.sqlite"

    @property
    def exports_dir(self) -> Path:
        return self.data_dir / "exports"

    @property
    def saved_path(self) -> Path:
        return self.data_dir / "settings.json"

    def save(self) -> None:
        """Keep the choices made in the app's settings tab for the next start (never the key or the password)."""
        values = {name: getattr(self, name) for name in SAVED_FIELDS}
        values["notes_dirs"] = [str(p) for p in self.notes_dirs]
        self.data_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.saved_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(values, ensure_ascii=False, indent=2), encoding="utf-8")
        tmp.replace(self.saved_path)

    def with_saved(self) -> tuple[Settings, str]:
        """These settings with the choices saved by :meth:`save` on top, and a warning if the file was unusable."""
        if not self.saved_path.is_file():
            return self, ""
        try:
            values = json.loads(self.saved_path.read_text(encoding="utf-8"))
            changes = {k: v for k, v in values.items() if k in SAVED_FIELDS}
            notes = changes.get("notes_dirs", [str(p) for p in self.notes_dirs])
            if not isinstance(notes, list) or not all(isinstance(p, str) for p in notes):
                raise ValueError("notes_dirs must be a list of folders")
            if not all(isinstance(changes.get(k, ""), str) for k in ("model", "base_url", "plan")):
                raise ValueError("model, base_url and plan must be text")
            return self.with_(**(changes | {"notes_dirs": tuple(Path(p) for p in notes)})), ""
        except Exception as exc:  # noqa: BLE001 - a broken file is reported and ignored, never fatal
            return self, f"ignored {self.saved_path}: {type(exc).__name__}: {exc}"[:300]

    def secrets(self) -> list[str]:
        """Values that must never appear in logs, transcripts or exports."""
        return [s for s in (self.api_key, self.password) if s]
