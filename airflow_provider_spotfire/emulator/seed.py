"""Seeded data of the Spotfire Server emulator: fixed ids, API clients, users, groups, library, licenses.

Everything here is restored by ``reset()``. The ids are fixed so that tests and DAGs can refer to them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_provider_spotfire.emulator.constants import (
    ALL_SCOPES,
    API_SCOPES,
    GROUP_ADMINISTRATOR,
    GROUP_EVERYONE,
    SBDF_MAGIC,
    SCOPE_AS_EXECUTE,
    SCOPE_LIBRARY_UPLOAD,
    SCOPE_LICENSES_READ,
    SCOPE_LICENSES_WRITE,
    SCOPE_OFFLINE,
    TYPE_AS_JOB,
    TYPE_FOLDER,
    TYPE_SBDF,
)
from airflow_provider_spotfire.emulator.core import Group, User

if TYPE_CHECKING:
    from airflow_provider_spotfire.emulator.state import EmulatorState

# re-exported: the scopes, types and fixed group ids have always been importable from here
__all__ = [
    "ALL_SCOPES",
    "API_SCOPES",
    "GROUP_ADMINISTRATOR",
    "GROUP_EVERYONE",
    "SBDF_MAGIC",
    "SCOPE_AS_EXECUTE",
    "SCOPE_LIBRARY_UPLOAD",
    "SCOPE_LICENSES_READ",
    "SCOPE_LICENSES_WRITE",
    "SCOPE_OFFLINE",
    "TYPE_AS_JOB",
    "TYPE_FOLDER",
    "TYPE_SBDF",
    "job_xml",
    "populate",
]

# --- Groups ----------------------------------------------------------------------------------------------
GROUP_AUTOMATION_SERVICES_USERS = "0ced564d-0352-4b0c-895e-8b21fe7e1452"
GROUP_AIRFLOW_UPLOADERS = "1e7aa70d-2b19-442b-81df-4fafa8d292ab"
GROUP_SALES = "5e239d92-8888-4ed1-94e5-bc93c0d5e05a"
GROUP_SALES_EMEA = "2f0b810c-d76c-4f48-87ee-5454f1a14d78"
GROUP_SALES_NORDICS = "523b3718-e068-4bc6-a3ec-9c2e64f27997"
GROUP_FINANCE = "3a33e0f1-7f4d-468e-8588-9e3a2a27a326"

# (id, name, groups it is a direct member of)
GROUPS: list[tuple[str, str, list[str]]] = [
    (GROUP_ADMINISTRATOR, "Administrator", []),
    (GROUP_EVERYONE, "Everyone", []),
    (GROUP_AUTOMATION_SERVICES_USERS, "Automation Services Users", []),
    (GROUP_AIRFLOW_UPLOADERS, "Airflow Uploaders", []),
    (GROUP_SALES, "Sales", []),
    (GROUP_SALES_EMEA, "Sales EMEA", [GROUP_SALES]),
    (GROUP_SALES_NORDICS, "Sales Nordics", [GROUP_SALES_EMEA]),
    (GROUP_FINANCE, "Finance", []),
]

# --- Users ---------------------------------------------------------------------------------------------
USER_ALICE = "ec2c0514-764e-4690-be70-2472c3e443d3"
USER_BOB = "3c5e39f1-df94-43e9-94e7-ca57558f79c8"
USER_CAROL = "d229ee34-e7dd-4fa7-b819-bd89757bb992"

# (id, name, display name, direct groups); every user is also implicitly in Everyone
USERS: list[tuple[str, str, str, list[str]]] = [
    (
        USER_ALICE,
        "alice",
        "Alice Andersson",
        [GROUP_SALES_NORDICS, GROUP_AIRFLOW_UPLOADERS, GROUP_ADMINISTRATOR],
    ),
    (USER_BOB, "bob", "Bob Brown", [GROUP_FINANCE]),
    (USER_CAROL, "carol", "Carol Clark", []),
]

# --- API clients (an API client is also a Spotfire user with its own id) ---------------------------------
CLIENT_USER_IDS = {
    "airflow": "70bb7b21-aba3-4dcf-acaf-729a328a6c71",
    "library-only": "820bf2e8-1b05-411c-bd3d-bb3b4485bf94",
    "automation-only": "dce6e4c3-02e9-4049-a6fd-4a1b17d52399",
    "licenses-reader": "f4c495aa-fd81-4bc3-a70f-7d794a3b7e1e",
    "licenses-writer": "56e1706c-90e9-4932-8273-9a3d8b6255d4",
    "post-auth": "f5044615-d1c5-473c-8f10-7d3d5f6f0f06",
    "web-client": "95be5cbb-8832-4239-897c-5e6efed21eb8",
    "native-client": "f9eb8cc6-0856-48bb-89b7-3f2350cec17d",
    "spa-client": "36789438-8eff-407b-b2e7-028fd17ea521",
}

WEB_CLIENT_REDIRECT_URI = "https://airflow.example.com/oauth2/callback"
NATIVE_CLIENT_REDIRECT_URI = "com.example.airflow-spotfire:/oauth2redirect"
SPA_CLIENT_REDIRECT_URI = "https://spa.example.com/callback"

_ADMIN_GROUPS = [GROUP_ADMINISTRATOR, GROUP_AIRFLOW_UPLOADERS, GROUP_AUTOMATION_SERVICES_USERS]

# The seeded API clients: (client id, profile, scopes, groups, other keyword arguments of
# ``EmulatorState.register_client``). The secret is "<client id>-secret" unless the extras set it.
_CLIENT_TABLE: list[tuple[str, str, list[str], list[str], dict]] = [
    ("airflow", "other", API_SCOPES, _ADMIN_GROUPS, {"display_name": "Airflow"}),
    ("library-only", "other", [SCOPE_LIBRARY_UPLOAD], [GROUP_AIRFLOW_UPLOADERS], {}),
    ("automation-only", "other", [SCOPE_AS_EXECUTE], [GROUP_AUTOMATION_SERVICES_USERS], {}),
    ("licenses-reader", "other", [SCOPE_LICENSES_READ], [], {}),
    ("licenses-writer", "other", [SCOPE_LICENSES_READ, SCOPE_LICENSES_WRITE], [], {}),
    (
        "post-auth",
        "other",
        API_SCOPES,
        _ADMIN_GROUPS,
        {"token_endpoint_auth_methods": ["client_secret_post"]},
    ),
    ("web-client", "web", ALL_SCOPES, [], {"redirect_uris": [WEB_CLIENT_REDIRECT_URI]}),
    (
        "native-client",
        "native",
        ALL_SCOPES,
        [],
        {"client_secret": None, "redirect_uris": [NATIVE_CLIENT_REDIRECT_URI]},
    ),
    (
        "spa-client",
        "user_agent",
        ALL_SCOPES,
        [],
        {"client_secret": None, "redirect_uris": [SPA_CLIENT_REDIRECT_URI]},
    ),
]

# Keyword arguments of ``EmulatorState.register_client``, one dict a client.
CLIENTS: list[dict] = [
    {
        "client_id": client_id,
        "client_secret": f"{client_id}-secret",
        "profile": profile,
        "scopes": scopes,
        "groups": groups,
        **extra,
    }
    for client_id, profile, scopes, groups, extra in _CLIENT_TABLE
]

# --- Library -----------------------------------------------------------------------------------------
# (path, folder id, read principals, write principals)
FOLDERS: list[tuple[str, str, list[str], list[str]]] = [
    ("/", "a28e0b5c-5e96-4f75-bc4f-04fb716a9968", [GROUP_EVERYONE], [GROUP_ADMINISTRATOR]),
    (
        "/Airflow",
        "de211c02-32a9-43d0-b943-39141250100d",
        [GROUP_EVERYONE],
        [GROUP_ADMINISTRATOR, GROUP_AIRFLOW_UPLOADERS],
    ),
    (
        "/Airflow/Reports",
        "5845f885-12d0-44e4-ae6f-30b1c529b750",
        [GROUP_EVERYONE],
        [GROUP_ADMINISTRATOR, GROUP_AIRFLOW_UPLOADERS],
    ),
    ("/Airflow/Jobs", "9beb3229-1ac9-49a1-a066-3be96e1514f1", [GROUP_EVERYONE], [GROUP_ADMINISTRATOR]),
    ("/Restricted", "05f54ba2-3588-4d15-8aea-2e47c11a4bd3", [GROUP_EVERYONE], [GROUP_FINANCE]),
    ("/Restricted/Finance", "949937ab-470f-4cc7-b863-15bc9570bf20", [GROUP_FINANCE], [GROUP_FINANCE]),
]

ITEM_EXISTING_SBDF = "08e80892-6a4c-4ce8-bf18-e1bb3dac68ad"
JOB_REFRESH_SALES = "207d068d-4a5a-4098-b228-aa97bd9267c1"
JOB_EXPORT_FINANCE = "491647ba-99f9-43d0-a6ad-776a474ade28"
JOB_BROKEN_EXPORT = "28b37c3c-c5d2-4472-a2a2-dd698a5b49e7"
JOB_NIGHTLY_BATCH = "bba64b71-49a7-4ca9-bf3f-fd895f237b25"
JOB_STATUS_NOT_SET = "c59e33e5-7569-4281-8bdf-8292388e99ee"
JOB_QUARTER_CLOSE = "d0c7d751-6cff-4ea8-ad35-a016332fae17"

# An SBDF file header section (magic, section type FileHeader, version 1.0) followed by filler.
EXISTING_SBDF_CONTENT = SBDF_MAGIC + b"\x01\x01\x00" + b"seeded by the Spotfire Server emulator\n"


def job_xml(analysis: str, behaviour: str = "") -> str:
    """A small Automation Services job definition, optionally with an emulator processing instruction."""
    pi = f"<?spotfire-emulator {behaviour}?>\n" if behaviour else ""
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        f"{pi}"
        '<as:Job xmlns:as="urn:tibco:spotfire.dxp.automation">\n'
        '  <as:JobDefinition xmlns="urn:tibco:spotfire.dxp.automation.tasks">\n'
        "    <as:Tasks>\n"
        "      <OpenAnalysisFromLibrary>\n"
        "        <as:Title>Open Analysis from Library</as:Title>\n"
        f"        <AnalysisPath>{analysis}</AnalysisPath>\n"
        "        <ConfigurationBlock />\n"
        "      </OpenAnalysisFromLibrary>\n"
        "      <ExportToPdf>\n"
        "        <as:Title>Export to PDF</as:Title>\n"
        f"        <Destination>/tmp{analysis}.pdf</Destination>\n"
        "      </ExportToPdf>\n"
        "    </as:Tasks>\n"
        "  </as:JobDefinition>\n"
        "</as:Job>\n"
    )


# (item id, parent folder, title, job xml)
AS_JOB_ITEMS: list[tuple[str, str, str, str]] = [
    (JOB_REFRESH_SALES, "/Airflow/Jobs", "Refresh Sales Dashboard", job_xml("/Airflow/Reports/Sales")),
    (
        JOB_EXPORT_FINANCE,
        "/Airflow/Jobs",
        "Export Finance Report",
        job_xml("/Airflow/Reports/Finance", 'queue="0" duration="0.5" outcome="Finished"'),
    ),
    (
        JOB_BROKEN_EXPORT,
        "/Airflow/Jobs",
        "Broken Export",
        job_xml(
            "/Airflow/Reports/Missing",
            'queue="0" duration="0.5" outcome="Failed" '
            'message="Could not open analysis /Airflow/Reports/Missing: the item does not exist."',
        ),
    ),
    (
        JOB_NIGHTLY_BATCH,
        "/Airflow/Jobs",
        "Nightly Batch",
        job_xml("/Airflow/Reports/Nightly", 'queue="1" duration="3600" outcome="Finished"'),
    ),
    (
        JOB_STATUS_NOT_SET,
        "/Airflow/Jobs",
        "Status Not Set",
        job_xml("/Airflow/Reports/Sales", 'queue="0" duration="0.5" outcome="NotSet"'),
    ),
    (
        JOB_QUARTER_CLOSE,
        "/Restricted/Finance",
        "Quarter Close",
        job_xml("/Restricted/Finance/Ledger", 'queue="0" duration="1" outcome="Finished"'),
    ),
]

# --- Licenses ------------------------------------------------------------------------------------------
LIC_WEBPLAYER = "Spotfire.Dxp.WebPlayer"
LIC_BUSINESS_AUTHOR = "Spotfire.Dxp.BusinessAuthor"
LIC_PROFESSIONAL = "Spotfire.Dxp.Professional"
LIC_EXTENSIONS = "Spotfire.Dxp.Extensions"
LIC_METRICS = "Spotfire.Dxp.Metrics"

# function name -> display name (each license below lists its functions by name)
_LICENSE_FUNCTIONS = {
    "openFromLibrary": "Open from Library",
    "openLinkedData": "Open Linked Data",
    "exportImage": "Export Image",
    "exportData": "Export Data",
    "exportToPdf": "Export to PDF",
    "exportToPowerPoint": "Export to PowerPoint",
    "print": "Print",
    "bookmarkPanel": "Bookmark Panel",
    "bookmarksPrivate": "Private Bookmarks",
    "bookmarksPublic": "Public Bookmarks",
    "useExternalActions": "Use External Actions",
    "saveToLibrary": "Save to Library",
    "openFile": "Open File",
    "authorVisualizations": "Author Visualizations",
    "useInformationLinks": "Use Information Links",
    "useDataConnectors": "Use Data Connectors",
    "informationDesigner": "Information Designer",
    "editScripts": "Edit Scripts",
    "dataFunctions": "Data Functions",
    "libraryAdministration": "Library Administration",
    "geoAnalytics": "Geographic Analytics",
    "predictiveAnalytics": "Predictive Analytics",
    "terrDataFunctions": "Spotfire Enterprise Runtime for R",
    "pythonDataFunctions": "Python Data Functions",
    "viewMetrics": "View Metrics",
    "editMetrics": "Edit Metrics",
}

# (license name, display name, its function names, space-separated)
_LICENSE_TABLE: list[tuple[str, str, str]] = [
    (
        LIC_WEBPLAYER,
        "Spotfire Consumer",
        "openFromLibrary openLinkedData exportImage exportData exportToPdf exportToPowerPoint print "
        "bookmarkPanel bookmarksPrivate bookmarksPublic useExternalActions",
    ),
    (
        LIC_BUSINESS_AUTHOR,
        "Spotfire Business Author",
        "openFromLibrary saveToLibrary openFile authorVisualizations useInformationLinks "
        "useDataConnectors exportData exportToPdf useExternalActions",
    ),
    (
        LIC_PROFESSIONAL,
        "Spotfire Analyst",
        "openFromLibrary saveToLibrary openFile authorVisualizations useInformationLinks "
        "useDataConnectors informationDesigner editScripts dataFunctions libraryAdministration exportData "
        "exportToPdf useExternalActions",
    ),
    (
        LIC_EXTENSIONS,
        "Spotfire Extensions",
        "geoAnalytics predictiveAnalytics terrDataFunctions pythonDataFunctions",
    ),
    (
        LIC_METRICS,
        "Spotfire Metrics",
        "viewMetrics editMetrics",
    ),
]

# name -> (display name, [(function name, function display name)])
LICENSES: dict[str, tuple[str, list[tuple[str, str]]]] = {
    name: (display, [(f, _LICENSE_FUNCTIONS[f]) for f in functions.split()])
    for name, display, functions in _LICENSE_TABLE
}

# group id -> {license name: functions (None = all functions)}
LICENSE_ASSIGNMENTS: dict[str, dict[str, list[str] | None]] = {
    GROUP_ADMINISTRATOR: {LIC_PROFESSIONAL: None, LIC_EXTENSIONS: None},
    GROUP_EVERYONE: {LIC_WEBPLAYER: ["openFromLibrary", "exportImage", "print"]},
    GROUP_SALES: {
        LIC_BUSINESS_AUTHOR: ["openFromLibrary", "saveToLibrary", "authorVisualizations", "exportData"]
    },
    GROUP_SALES_EMEA: {LIC_EXTENSIONS: ["geoAnalytics"]},
    GROUP_FINANCE: {LIC_WEBPLAYER: None, LIC_METRICS: ["viewMetrics"]},
}


def populate(state: EmulatorState) -> None:
    """Fill an (empty, locked) state with the seeded data."""
    principals, library, licensing = state.principals, state.library, state.licensing
    for gid, name, member_of in GROUPS:
        principals.groups[gid] = Group(group_id=gid, name=name, member_of=list(member_of))
    for uid, name, display, groups in USERS:
        principals.users[uid] = User(user_id=uid, name=name, display_name=display, groups=list(groups))
    for kwargs in CLIENTS:
        principals.register_client(user_id=CLIENT_USER_IDS[kwargs["client_id"]], seeded=True, **kwargs)
    for path, fid, read, write in FOLDERS:
        library.add_folder(path, read=read, write=write, folder_id=fid)
    library.add_item(
        "/Airflow/Reports",
        "Existing Data",
        TYPE_SBDF,
        EXISTING_SBDF_CONTENT,
        item_id=ITEM_EXISTING_SBDF,
        description="Seeded SBDF item (used to demonstrate already_exists / overwrite).",
        keywords=["seed", "emulator"],
    )
    for item_id, parent, title, xml in AS_JOB_ITEMS:
        library.add_item(parent, title, TYPE_AS_JOB, xml.encode(), item_id=item_id)
    for name, (display, functions) in LICENSES.items():
        licensing.licenses[name] = {"name": name, "displayName": display, "functions": dict(functions)}
    for gid, assignments in LICENSE_ASSIGNMENTS.items():
        for lic, funcs in assignments.items():
            all_funcs = list(licensing.licenses[lic]["functions"])
            licensing.assignments.setdefault(gid, {})[lic] = list(all_funcs if funcs is None else funcs)
