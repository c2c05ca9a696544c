"""DRF authentication and permissions for the two kinds of API caller:
agents (`Authorization: Token <token>`) and logged-in people (session + CSRF)."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, permissions

from tenants.access import access_agent_token
from tenants.models import AgentToken


class AgentPrincipal:
    """request.user for an agent: authenticated, but never a person."""

    is_authenticated = True
    is_anonymous = False
    is_staff = False

    def __init__(self, token: AgentToken):
        self.token = token

    def __str__(self):
        return f"agent:{self.token.pk}"


class AgentTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Token"

    def authenticate(self, request):
        words = authentication.get_authorization_header(request).split()
        if not words or words[0].lower() != self.keyword.lower().encode():
            return None  # not ours: let session authentication try
        if len(words) != 2:
            raise exceptions.AuthenticationFailed("Authorization: Token <token>, with no spaces in the token.")
        try:
            presented = words[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("Invalid token.") from None
        token = access_agent_token(presented)
        if token is None:
            raise exceptions.AuthenticationFailed("Invalid token.")
        return AgentPrincipal(token), token

    def authenticate_header(self, request):
        return self.keyword


class IsAgent(permissions.BasePermission):
    message = "This endpoint takes an agent token: Authorization: Token <token>."

    def has_permission(self, request, view):
        return isinstance(request.auth, AgentToken)


class IsPerson(permissions.BasePermission):
    """A logged-in user (session), not an agent. Which tenant is checked later,
    by the access functions."""

    message = "Log in to the portal to use this endpoint."

    def has_permission(self, request, view):
        return bool(request.user and request.user.is_authenticated and not isinstance(request.auth, AgentToken))


class AgentTokenScheme(OpenApiAuthenticationExtension):
    target_class = "portal.tickets.auth.AgentTokenAuthentication"
    name = "agentToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Token <agent token>`; tokens are created on the tenant settings page.",
        }
