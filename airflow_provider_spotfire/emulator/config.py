"""Configuration of the Spotfire Server emulator.

Every knob has a default that mirrors a freshly installed Spotfire Server as closely as the emulator can.
A configuration can be built in code, loaded from a JSON file (:meth:`EmulatorConfig.from_json_file`),
built from CLI flags (see ``__main__``) and patched at run time (``PATCH /_emulator/config`` or
:meth:`EmulatorConfig.patched`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

GIB = 1024**3


class EmulatorConfig(BaseModel):
    """All tunable behaviour of the emulator (validated; unknown keys are rejected)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    # --- OAuth2 -------------------------------------------------------------------------------------
    token_lifetime: int = Field(3600, ge=0, description="Access token lifetime in seconds (expires_in).")
    refresh_token_lifetime: int = Field(
        30 * 24 * 3600, ge=0, description="Refresh token lifetime in seconds (0 = never expires)."
    )
    auth_code_lifetime: int = Field(60, ge=1, description="Authorization code lifetime in seconds.")
    rotate_refresh_tokens: bool = Field(
        True, description="Issue a new refresh token on every refresh and invalidate the old one."
    )
    refresh_token_reuse_detection: bool = Field(
        False,
        description="With rotation: presenting an already rotated refresh token revokes the whole grant "
        "(RFC 9700 §4.14.2).",
    )
    metadata_enabled: bool = Field(
        True, description="Serve /spotfire/.well-known/oauth-authorization-server (404 when False)."
    )
    authorize_user: str = Field("alice", description="User that the authorization endpoint auto-approves.")
    authorize_deny: bool = Field(False, description="Authorization endpoint answers error=access_denied.")
    public_url: str | None = Field(
        None, description="Base URL used in links/issuer instead of the request's own (e.g. behind a proxy)."
    )

    # --- Library upload -----------------------------------------------------------------------------
    max_upload_bytes: int = Field(10 * GIB, ge=0, description="Maximum size of one uploaded item.")
    min_chunk_bytes: int = Field(0, ge=0, description="Minimum chunk size (all chunks except the last).")
    max_jobs_per_client: int = Field(5, ge=0, description="Maximum open upload jobs per API client.")
    max_jobs_per_server: int = Field(50, ge=0, description="Maximum open upload jobs in the whole server.")
    max_parallel_chunks_per_job: int = Field(
        4, ge=1, description="Concurrent chunk requests per upload job before 503 server_busy."
    )

    # --- Automation Services ------------------------------------------------------------------------
    as_queue_seconds: float = Field(0.3, ge=0, description="Default time a job stays Queued.")
    as_run_seconds: float = Field(1.5, ge=0, description="Default time a job stays InProgress.")
    as_max_concurrent_jobs: int = Field(
        20, ge=0, description="Queued+InProgress jobs before starts get Busy."
    )
    as_run_seconds_range: tuple[float, float] | None = Field(
        None,
        description="[min, max]: each job without its own duration runs a time drawn uniformly from this "
        "range (seeded by as_duration_seed) instead of as_run_seconds.",
    )
    as_duration_seed: int | None = Field(
        0, description="Seed of the RNG of as_run_seconds_range (None = non-reproducible)."
    )
    as_field_casing: Literal["pascal", "camel", "lower"] = Field(
        "pascal", description="Key casing of ExecutionStatus JSON (JobId / jobId / jobid)."
    )
    extra_response_fields: bool = Field(
        False, description="Add unknown extra properties to API responses (tests forgiving parsing)."
    )

    # --- Fault injection ----------------------------------------------------------------------------
    rate_503: float = Field(0.0, ge=0, le=1, description="Probability of an injected 503 server_busy.")
    rate_429: float = Field(
        0.0, ge=0, le=1, description="Probability of an injected 429 rate_limit_exceeded."
    )
    drop_rate: float = Field(0.0, ge=0, le=1, description="Probability of a dropped connection.")
    retry_after: int = Field(1, ge=0, description="Retry-After seconds on 503/429 answers.")
    latency_ms: int = Field(0, ge=0, description="Added latency per matching request in milliseconds.")
    fault_seed: int | None = Field(0, description="Seed of the fault RNG (None = non-reproducible).")
    faults_on_token_endpoint: bool = Field(False, description="Also inject faults on /spotfire/oauth2/token.")
    fault_path_prefixes: list[str] = Field(
        default_factory=lambda: ["/spotfire/api/"], description="Path prefixes subject to fault injection."
    )

    drop_path_prefixes: list[str] | None = Field(
        None, description="If set, dropped connections only hit eligible paths with these prefixes."
    )

    # --- Misc -----------------------------------------------------------------------------------------
    request_log_size: int = Field(2000, ge=1, description="Entries kept in the request log.")
    data_dir: str | None = Field(
        None, description="Directory for uploaded bytes (default: a fresh temp dir per emulator)."
    )

    @field_validator("as_run_seconds_range")
    @classmethod
    def _check_range(cls, value: tuple[float, float] | None) -> tuple[float, float] | None:
        if value is not None and not 0 <= value[0] <= value[1]:
            raise ValueError(
                f"as_run_seconds_range must be [min, max] with 0 <= min <= max, got {list(value)}"
            )
        return value

    # ------------------------------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EmulatorConfig:
        """Build a validated configuration from a plain dict (unknown keys raise)."""
        return cls.model_validate(data)

    @classmethod
    def from_json_file(cls, path: str | Path) -> EmulatorConfig:
        """Load a configuration from a JSON object file (keys as the field names)."""
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
        if not isinstance(data, dict):
            raise ValueError(f"{path}: the configuration file must contain a JSON object")
        return cls.from_dict(data)

    def to_dict(self) -> dict[str, Any]:
        """The configuration as a JSON-serialisable dict."""
        return self.model_dump(mode="json")

    def patched(self, **patch: Any) -> EmulatorConfig:
        """A validated copy with ``patch`` applied (unknown keys or bad values raise ``ValueError``)."""
        data = self.to_dict()
        data.update(patch)
        return type(self).model_validate(data)
