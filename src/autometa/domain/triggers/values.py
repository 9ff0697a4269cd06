"""Scalar types the trigger kinds share."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from autometa.domain.kinds import UINT40_MAX

UnixTime = Annotated[int, Field(ge=0, le=UINT40_MAX, description="unix seconds")]
