"""Settings from the environment (pydantic-settings).

Every setting has a default that works on a fresh machine: SQLite under ./var/
and a secret key generated once and kept in ./var/secret_key.
"""

from __future__ import annotations

import secrets
from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SAUMATON_", extra="ignore")

    var_dir: Path = Field(default=Path("var"))
    database_url: str = ""
    secret_key: str = ""
    host: str = "127.0.0.1"
    port: int = Field(default=8000, validation_alias="PORT")
    # Shown on receipts (Act 658/2013: name, contact details, business ID).
    business_name: str = "Saumaton Demo Oy"
    business_id: str = "2077474-0"
    business_address: str = "Esimerkkikatu 1, 00100 Helsinki"
    default_language: str = "fi"
    timezone: str = "Europe/Helsinki"
    # Seconds before an unpaid web reservation lapses.
    reservation_ttl_seconds: int = 15 * 60
    db_pool_size: int = 10

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        self.var_dir.mkdir(parents=True, exist_ok=True)
        return f"sqlite+aiosqlite:///{(self.var_dir / 'saumaton.db').resolve()}"

    def resolved_secret_key(self) -> str:
        if self.secret_key:
            return self.secret_key
        self.var_dir.mkdir(parents=True, exist_ok=True)
        path = self.var_dir / "secret_key"
        if not path.exists():
            path.write_text(secrets.token_urlsafe(48))
            path.chmod(0o600)
        return path.read_text().strip()


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
