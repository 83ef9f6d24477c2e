"""OAuth2 scopes of the Spotfire REST APIs (each call asks for exactly the one it needs)."""

LIBRARY_UPLOAD = "api.rest.library.upload"
AUTOMATION_EXECUTE = "api.rest.automation-services-job.execute"
LICENSES_READ = "api.licenses.read"
LICENSES_WRITE = "api.licenses.write"
OFFLINE = "offline"

ALL_API_SCOPES = (LIBRARY_UPLOAD, AUTOMATION_EXECUTE, LICENSES_READ, LICENSES_WRITE)
