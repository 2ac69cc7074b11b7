"""A fake entcore ENT for the tests: its directory API (routes, filters, silent no-ops) on
127.0.0.1, an in-memory state, bearer tokens with scopes, a call log and fault injection.
The OAuth2 endpoints live apart, in tests.fake_entcore_oauth."""

from tests.fake_entcore.app import Call, FakeEnt, Fault
from tests.fake_entcore.server import serving
from tests.fake_entcore.state import EntState, FakeClass, FakeGroup, FakeStructure, FakeUser

__all__ = [
    "Call",
    "EntState",
    "FakeClass",
    "FakeEnt",
    "FakeGroup",
    "FakeStructure",
    "FakeUser",
    "Fault",
    "serving",
]
