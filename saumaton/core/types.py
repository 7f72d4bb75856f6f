"""Annotated types for identifiers and other bounded inputs."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

MAX_ID = 2**62
DbId = Annotated[int, Field(ge=1, le=MAX_ID)]
