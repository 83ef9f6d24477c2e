"""Constants of the Spotfire Server emulator: scopes, item types, fixed group ids, status codes, profiles.

Every other emulator module takes its constants from here (``seed`` re-exports the ones tests use).
"""

from __future__ import annotations

# --- OAuth2 scopes ---------------------------------------------------------------------------------
SCOPE_LIBRARY_UPLOAD = "api.rest.library.upload"
SCOPE_AS_EXECUTE = "api.rest.automation-services-job.execute"
SCOPE_LICENSES_READ = "api.licenses.read"
SCOPE_LICENSES_WRITE = "api.licenses.write"
SCOPE_OFFLINE = "offline"
API_SCOPES = [SCOPE_LIBRARY_UPLOAD, SCOPE_AS_EXECUTE, SCOPE_LICENSES_READ, SCOPE_LICENSES_WRITE]
ALL_SCOPES = [*API_SCOPES, SCOPE_OFFLINE]

# --- OAuth2 clients and grants ---------------------------------------------------------------------
PROFILES = ("other", "web", "native", "user_agent")
PUBLIC_PROFILES = ("native", "user_agent")
AUTH_METHODS = ("client_secret_basic", "client_secret_post", "none")
GRANT_TYPES = ("authorization_code", "client_credentials", "refresh_token")

# --- Groups every server has (the seeded rest is in ``seed``) --------------------------------------
GROUP_ADMINISTRATOR = "5598211c-416b-43cd-88e4-15fc9824c51f"
GROUP_EVERYONE = "f41b8159-6dac-4567-ab61-3994aa5bee0c"

# --- Library ---------------------------------------------------------------------------------------
TYPE_SBDF = "spotfire.sbdf"
TYPE_FOLDER = "spotfire.folder"
TYPE_AS_JOB = "spotfire.automationservicesjob"
SBDF_MAGIC = b"\xdf\x5b"
UPLOAD_OPEN, UPLOAD_FINISHED, UPLOAD_CANCELLED, UPLOAD_FAILED = "open", "finished", "cancelled", "failed"
UPLOAD_STATES = (UPLOAD_OPEN, UPLOAD_FINISHED, UPLOAD_CANCELLED, UPLOAD_FAILED)

# --- Automation Services status codes --------------------------------------------------------------
NOT_SET, QUEUED, IN_PROGRESS, FINISHED, FAILED, MISSING, BUSY, CANCELED = (
    "NotSet",
    "Queued",
    "InProgress",
    "Finished",
    "Failed",
    "Missing",
    "Busy",
    "Canceled",
)
# the states a stored job can be in (Busy answers create no job)
AS_JOB_STATES = (QUEUED, IN_PROGRESS, FINISHED, FAILED, NOT_SET, CANCELED, MISSING)
OUTCOMES = {s.lower(): s for s in (FINISHED, FAILED, NOT_SET)}
DEFAULT_MESSAGES = {
    NOT_SET: "",
    QUEUED: "The job is queued.",
    IN_PROGRESS: "The job is in progress.",
    FINISHED: "The job finished successfully.",
    FAILED: "The job failed.",
    MISSING: "The job is missing; it may have been removed from the job queue.",
    BUSY: "The server is busy, try again later.",
    CANCELED: "The job was aborted.",
}
NOT_FOUND_MESSAGE = "Job file not found or no access."
# target of the ``<?spotfire-emulator queue=".." duration=".." outcome=".." message=".."?>`` instruction
PI_TARGET = "spotfire-emulator"
