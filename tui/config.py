"""What the console remembers between runs, and what the user configures.

- `$XDG_CONFIG_HOME/bastion/config.toml` is the user's: `theme = "..."` (the default; a theme picked in the
  TUI later wins) and a `[keys]` table that remaps
  bindings by id (`"resource.create" = "a"`; `?` in the TUI lists every id). Bastion only reads it.
- `$XDG_STATE_HOME/bastion/state.json` is Bastion's: the servers and accounts logged in to, the last
  one, the theme picked in the TUI. Never a password or a token (those live in the keyring).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path


class ConfigError(ValueError):
    pass


def config_dir() -> Path:
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "bastion"


def state_path() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(base) / "bastion" / "state.json"


@dataclass
class Config:
    theme: str | None = None
    keys: dict[str, str] = field(default_factory=dict)


def load_config(path: Path | None = None) -> Config:
    path = path or config_dir() / "config.toml"
    try:
        text = path.read_text()
    except FileNotFoundError:
        return Config()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: {exc}") from None
    import tomllib  # only with a config file: the console's start does not wait for it otherwise

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    keys = data.get("keys", {})
    if not isinstance(keys, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in keys.items()):
        raise ConfigError(f'{path}: [keys] maps binding ids to keys, like "resource.create" = "a"')
    theme = data.get("theme")
    if theme is not None and not isinstance(theme, str):
        raise ConfigError(f"{path}: theme must be a string")
    return Config(theme=theme, keys=keys)


@dataclass
class Account:
    server: str
    email: str


@dataclass
class State:
    accounts: list[Account] = field(default_factory=list)
    last: Account | None = None
    theme: str | None = None

    def remember(self, server: str, email: str) -> None:
        account = Account(server, email)
        self.accounts = [a for a in self.accounts if (a.server, a.email) != (server, email)]
        self.accounts.insert(0, account)
        self.last = account

    def forget(self, server: str, email: str) -> None:
        if self.last and (self.last.server, self.last.email) == (server, email):
            self.last = None

    @property
    def last_server(self) -> str | None:
        """The server last logged in to; still known after a logout (only the account is forgotten)."""
        account = self.last or (self.accounts[0] if self.accounts else None)
        return account.server if account else None

    def account_for(self, server: str | None) -> Account | None:
        """The account to use on `server` (the last one used there), or the last account of all."""
        if server is None:
            return self.last
        if self.last and self.last.server == server:
            return self.last
        return next((a for a in self.accounts if a.server == server), None)


def load_state(path: Path | None = None) -> State:
    path = path or state_path()
    try:
        data = json.loads(path.read_text())
        accounts = [Account(a["server"], a["email"]) for a in data.get("accounts", [])]
        last = Account(**data["last"]) if data.get("last") else None
        return State(accounts=accounts, last=last, theme=data.get("theme"))
    except FileNotFoundError:
        return State()
    except (OSError, ValueError, KeyError, TypeError):
        return State()  # a damaged state file only loses the remembered accounts


def save_state(state: State, path: Path | None = None) -> None:
    path = path or state_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(state), indent=2))
    tmp.replace(path)
