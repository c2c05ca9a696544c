"""The REST API (/api/v1/). Agents create and complete tickets with a token;
people list tickets and get read grants with their session; tenant admins get
audit grants for their gatekeeper's audit log.

Every ticket is reached through portal.tickets.access, so another tenant's ticket is a
404 like a ticket that never existed.
"""

from django.db import transaction
from django.db.models import Q
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.authentication import SessionAuthentication
from rest_framework.decorators import api_view, authentication_classes, permission_classes
from rest_framework.exceptions import APIException, NotFound, ValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import BasePermission
from rest_framework.response import Response

from portal.tickets import grants, services
from portal.tickets.access import (
    access_note_for_user,
    access_ticket_for_agent,
    access_ticket_for_user,
    tickets_by_ids_for_user,
    tickets_for_user,
)
from portal.tickets.auth import AgentTokenAuthentication, IsAgent, IsPerson
from portal.tickets.models import Ticket
from portal.tickets.serializers import (
    AuditGrantSerializer,
    NOTE_CONTENT_TYPE,
    ErrorSerializer,
    NoteCreatedSerializer,
    NoteCreateSerializer,
    NoteStoredSerializer,
    PutGrantSerializer,
    ReadGrantSerializer,
    SummaryGrantRequestSerializer,
    SummaryGrantSerializer,
    TicketCompletedSerializer,
    TicketCreatedSerializer,
    TicketCreateSerializer,
    TicketDetailSerializer,
    TicketListQuerySerializer,
    TicketPageSerializer,
    TicketSummarySerializer,
)
from tenants.access import tenant_for_admin, tenant_for_user
from tenants.locations import active_location, location_of
from tenants.models import StorageLocation, Tenant


class GatekeeperNotConfigured(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "This tenant has no gatekeeper configured yet; its admin sets one on the settings page."
    default_code = "no_gatekeeper"


class TicketComplete(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "This ticket is complete: its files can no longer change."
    default_code = "ticket_complete"


class TicketErased(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "This ticket is erased, or being erased: there is nothing to grant."
    default_code = "ticket_erased"


class TicketMoving(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = ("This ticket is being moved to another storage location: notes can be added once "
                      "its move is over (a note written now would be left behind).")
    default_code = "ticket_moving"


def _require_not_moving(ticket) -> None:
    from portal.moves.services import open_move

    if open_move(ticket) is not None:
        raise TicketMoving()


def _require_not_erased(*tickets) -> None:
    """One query, however many tickets (a list page's summary grant names up to 50)."""
    if Ticket.objects.filter(Q(erased_at__isnull=False) | Q(erasure__isnull=False),
                             pk__in=[t.pk for t in tickets]).exists():
        raise TicketErased()


class TicketPagination(PageNumberPagination):
    page_size = 25


# What the schema says about refusals (docs/portal.md, "The API"). Each operation
# lists the ones it can really answer; tests/portal/test_api_fuzz.py holds it to that.
POSITIVE_INT = {"type": "integer", "minimum": 1}
# /api/v1/tickets takes both kinds of caller, one per method. Only it names its
# security by hand: a hand-named scheme is not added to the schema's
# securitySchemes, the other operations' authenticators add them.
AGENT = [{"agentToken": []}]
SESSION = [{"cookieAuth": []}]  # and the CSRF token in X-CSRFToken on a POST


def _error(description: str) -> OpenApiResponse:
    return OpenApiResponse(ErrorSerializer, description=description)


INVALID = OpenApiResponse(
    OpenApiTypes.OBJECT,
    description='Invalid input: `{"field": ["reason"]}` (nested for `files`), or `{"detail": "reason"}` for a '
    "body that is not JSON (malformed, not UTF-8, nested too deeply, or holding a lone surrogate).",
)
BAD_BODY = _error("The body is not JSON: malformed, not UTF-8, nested too deeply, or holding a lone surrogate.")
NO_TOKEN = _error("No agent token, or a bad or revoked one (`WWW-Authenticate: Token`).")
NO_SESSION = _error("Not logged in, no or a bad CSRF token, or an agent token on a session endpoint.")
NOT_FOUND = _error("No such ticket, or another tenant's: `not found`.")
NO_GATEKEEPER = _error("The tenant has no gatekeeper configured yet, or the ticket is erased or being erased.")
NOTE_REFUSED = _error("The tenant has no gatekeeper configured yet, or the ticket is erased or being erased, "
                      "or being moved to another storage location (`ticket_moving`).")
TOO_LARGE = _error("The body is larger than the portal accepts.")
NOT_JSON = _error("The body is not `application/json`.")


def _require_gatekeeper(where: Tenant | StorageLocation) -> None:
    """A tenant's (its active location's) or a ticket's own location's gatekeeper."""
    if not where.has_gatekeeper:
        raise GatekeeperNotConfigured()


class AgentOrPerson(BasePermission):
    """POST is an agent's (token); GET is a person's (session)."""

    message = "POST takes an agent token; GET takes a logged-in session."

    def has_permission(self, request, view):
        if request.method == "POST":
            return IsAgent().has_permission(request, view)
        if request.method in ("GET", "HEAD", "OPTIONS"):
            return IsPerson().has_permission(request, view)
        return True  # any other method: let the view answer 405


@extend_schema(
    methods=["GET"],
    operation_id="tickets_list",
    auth=SESSION,
    parameters=[
        OpenApiParameter("number", POSITIVE_INT, description="Only the ticket with this number (1 or more)."),
        OpenApiParameter("page", POSITIVE_INT, description="The page, from 1; past the last: 404."),
    ],
    responses={
        200: TicketPageSerializer,
        400: INVALID,
        401: _error("Not logged in (`WWW-Authenticate: Token`: this URL also takes agent tokens, for POST)."),
        403: _error("An agent token: listing is for people."),
        404: _error("No such page, or the caller belongs to no live tenant."),
    },
    description="The caller's tenant's tickets, newest first, 25 a page.",
)
@extend_schema(
    methods=["POST"],
    operation_id="tickets_create",
    auth=AGENT,
    request=TicketCreateSerializer,
    responses={
        201: TicketCreatedSerializer,
        400: INVALID,
        401: NO_TOKEN,
        403: _error("A session, not an agent token (or its CSRF check failed)."),
        409: NO_GATEKEEPER,
        413: TOO_LARGE,
        415: NOT_JSON,
    },
    description="An agent creates a ticket with its file manifest and gets a put grant for its prefix.",
)
@api_view(["GET", "POST"])
@authentication_classes([AgentTokenAuthentication, SessionAuthentication])
@permission_classes([AgentOrPerson])
def tickets(request):
    if request.method == "POST":
        return _create_ticket(request)
    return _list_tickets(request)


def _create_ticket(request):
    agent = request.auth
    _require_gatekeeper(agent.tenant)
    body = TicketCreateSerializer(data=request.data)
    body.is_valid(raise_exception=True)
    ticket = services.create_ticket(agent, body.validated_data["files"])
    grant = grants.put_grant(ticket, agent)
    location = location_of(ticket)
    answer = {
        "id": ticket.id,
        "number": ticket.number,
        "status": ticket.status,
        "prefix": ticket.prefix,
        "gatekeeper_url": location.gatekeeper_url,
        "gatekeeper_id": location.gatekeeper_id,
        "grant": grant.token,
        "grant_expires_at": grant.expires_at,
        "files": ticket.files.all(),
    }
    return Response(TicketCreatedSerializer(answer).data, status=status.HTTP_201_CREATED)


def _list_tickets(request):
    tenant_for_user(request.user)  # 404 for people without a tenant
    query = TicketListQuerySerializer(data=request.query_params)
    query.is_valid(raise_exception=True)
    found = tickets_for_user(request.user)
    if "number" in query.validated_data:
        found = found.filter(number=query.validated_data["number"])
    paginator = TicketPagination()
    page = paginator.paginate_queryset(found, request)
    return paginator.get_paginated_response(TicketSummarySerializer(page, many=True).data)


@extend_schema(
    responses={200: TicketDetailSerializer, 403: NO_SESSION, 404: NOT_FOUND},
    description="One ticket with its file manifest.",
)
@api_view(["GET"])
@permission_classes([IsPerson])
def ticket_detail(request, ticket_id):
    ticket = access_ticket_for_user(request.user, ticket_id)
    return Response(TicketDetailSerializer(ticket).data)


@extend_schema(
    request=None,
    responses={200: TicketCompletedSerializer, 401: NO_TOKEN, 404: NOT_FOUND,
               409: _error("The ticket is erased or being erased: there is nothing to complete.")},
    description="The agent has uploaded every file. Idempotent. No body (one is ignored).",
)
@api_view(["POST"])
@authentication_classes([AgentTokenAuthentication])
@permission_classes([IsAgent])
def ticket_complete(request, ticket_id):
    ticket = access_ticket_for_agent(request.auth, ticket_id)
    _require_not_erased(ticket)
    ticket = services.complete_ticket(ticket)
    return Response(TicketCompletedSerializer({"id": ticket.id, "status": ticket.status}).data)


@extend_schema(
    request=None,
    responses={
        200: PutGrantSerializer,
        401: NO_TOKEN,
        404: NOT_FOUND,
        409: _error("The ticket is complete or erased, or the tenant has no gatekeeper configured."),
    },
    description="A fresh single-use put grant for an unfinished ticket, for an agent whose upload failed "
    "after its first grant expired or was used. No body (one is ignored).",
)
@api_view(["POST"])
@authentication_classes([AgentTokenAuthentication])
@permission_classes([IsAgent])
def ticket_put_grant(request, ticket_id):
    ticket = access_ticket_for_agent(request.auth, ticket_id)
    if ticket.status == ticket.Status.COMPLETE:
        raise TicketComplete()
    _require_not_erased(ticket)
    _require_gatekeeper(location_of(ticket))
    grant = grants.put_grant(ticket, request.auth)  # recorded before the check below, which an erasure's start
    _require_not_erased(ticket)  # may have passed meanwhile: then the grant is never handed out
    return Response(PutGrantSerializer(_ticket_grant_answer(ticket, grant)).data)


@extend_schema(
    request=None,
    responses={
        200: ReadGrantSerializer,
        400: BAD_BODY,
        403: NO_SESSION,
        404: NOT_FOUND,
        409: NO_GATEKEEPER,
        413: TOO_LARGE,
        415: NOT_JSON,
    },
    description="A short read grant (get, list) for this ticket's prefix, for the report page. Session + CSRF "
    "(`X-CSRFToken`); no body, or `{}` as JSON.",
)
@api_view(["POST"])
@permission_classes([IsPerson])
def ticket_grant(request, ticket_id):
    ticket = access_ticket_for_user(request.user, ticket_id)
    _require_not_erased(ticket)
    _require_gatekeeper(location_of(ticket))
    return Response(ReadGrantSerializer(_ticket_grant_answer(ticket, grants.read_grant(ticket, request.user))).data)


def _ticket_grant_answer(ticket, grant) -> dict:
    """What a grant for one ticket's prefix comes with: where to use it, until when."""
    location = location_of(ticket)
    return {"grant": grant.token, "gatekeeper_url": location.gatekeeper_url,
            "gatekeeper_id": location.gatekeeper_id, "prefix": ticket.prefix, "expires_at": grant.expires_at}


@extend_schema(
    operation_id="audit_grant",
    request=None,
    responses={
        200: AuditGrantSerializer,
        400: BAD_BODY,
        403: _error("Not logged in, no or a bad CSRF token, or not an admin of the tenant."),
        404: _error("The caller belongs to no live tenant."),
        409: NO_GATEKEEPER,
        413: TOO_LARGE,
        415: NOT_JSON,
    },
    description="A short audit grant for the tenant's gatekeeper, for the audit log page: the browser "
    "searches the log at the gatekeeper itself (POST /v1/audit/search); the log never passes through "
    "the portal. Tenant admins only; session + CSRF (`X-CSRFToken`); no body, or `{}` as JSON.",
)
@api_view(["POST"])
@permission_classes([IsPerson])
def audit_grant(request):
    tenant = tenant_for_admin(request.user)
    _require_gatekeeper(tenant)
    grant = grants.audit_grant(tenant, request.user)
    answer = {"grant": grant.token, "gatekeeper_url": active_location(tenant).gatekeeper_url, "expires_at": grant.expires_at}
    return Response(AuditGrantSerializer(answer).data)


SUMMARY_NAME = "summary.json"


@extend_schema(
    operation_id="summary_grant",
    request=SummaryGrantRequestSerializer,
    responses={
        200: SummaryGrantSerializer,
        400: INVALID,
        403: NO_SESSION,
        404: _error("A ticket that is not the caller's tenant's (or does not exist), or no live tenant."),
        409: NO_GATEKEEPER,
        413: TOO_LARGE,
        415: NOT_JSON,
    },
    description="One get-only grant for up to 50 tickets' prefixes (protocol 2 `prefixes`), for the ticket "
    "list: the browser signs every ticket's summary.json in one /v1/sign call and reads them straight from "
    "the tenant's storage. All or nothing: one ticket not the caller's is a 404. Session + CSRF.",
)
@api_view(["POST"])
@permission_classes([IsPerson])
def summary_grant(request):
    tenant_for_user(request.user)  # 404 for people without a live tenant
    body = SummaryGrantRequestSerializer(data=request.data)
    body.is_valid(raise_exception=True)
    tickets = tickets_by_ids_for_user(request.user, body.validated_data["tickets"])
    _require_not_erased(*tickets)
    locations = {location_of(t).pk: location_of(t) for t in tickets}
    if len(locations) != 1:
        raise ValidationError({"tickets": ["These tickets are at more than one storage location: ask for one "
                                           "grant per location (each list row names its location)."]})
    location = next(iter(locations.values()))
    _require_gatekeeper(location)
    grant = grants.summary_grant(tickets, request.user)
    answer = {"grant": grant.token, "gatekeeper_url": location.gatekeeper_url, "expires_at": grant.expires_at,
              "tickets": [{"id": t.id, "prefix": t.prefix, "key": t.prefix + SUMMARY_NAME} for t in tickets]}
    return Response(SummaryGrantSerializer(answer).data)


@extend_schema(
    operation_id="note_create",
    request=NoteCreateSerializer,
    responses={
        201: NoteCreatedSerializer,
        400: INVALID,
        403: NO_SESSION,
        404: NOT_FOUND,
        409: NOTE_REFUSED,
        413: TOO_LARGE,
        415: NOT_JSON,
    },
    description="Start a note on a ticket: the portal records that it exists (author, time, size) and answers "
    "a single-use put grant for the note's own prefix. The browser uploads the text straight to the tenant's "
    "storage through the gatekeeper, then calls .../stored. The text never reaches the portal.",
)
@api_view(["POST"])
@permission_classes([IsPerson])
def notes(request, ticket_id):
    ticket = access_ticket_for_user(request.user, ticket_id)
    body = NoteCreateSerializer(data=request.data)
    body.is_valid(raise_exception=True)
    _require_not_erased(ticket)
    _require_gatekeeper(location_of(ticket))
    with transaction.atomic():
        # The ticket's row, as a move's plan locks it (portal/moves/services.py): a plan
        # sees this note, or this request sees the move; never a note written in between.
        Ticket.objects.select_for_update().filter(pk=ticket.pk).first()
        _require_not_moving(ticket)
        note = services.create_note(ticket, request.user, body.validated_data["size"])
    grant = grants.note_grant(note, request.user)
    answer = {"id": note.id, "key": note.key, "size": note.size, "content_type": NOTE_CONTENT_TYPE,
              "grant": grant.token, "gatekeeper_url": location_of(ticket).gatekeeper_url,
              "expires_at": grant.expires_at}
    return Response(NoteCreatedSerializer(answer).data, status=status.HTTP_201_CREATED)


@extend_schema(
    operation_id="note_stored",
    request=None,
    responses={200: NoteStoredSerializer, 400: BAD_BODY, 403: NO_SESSION, 404: NOT_FOUND, 413: TOO_LARGE,
               415: NOT_JSON},
    description="The note's author says its upload succeeded: the note is listed on the report page and in "
    "the ticket's history from now on. Idempotent. Another person's note is a 404. No body, or `{}`.",
)
@api_view(["POST"])
@permission_classes([IsPerson])
def note_stored(request, ticket_id, note_id):
    note = access_note_for_user(request.user, ticket_id, note_id)
    if note.author_id != request.user.pk:
        raise NotFound()
    note = services.note_stored(note, request.user)
    return Response(NoteStoredSerializer({"id": note.id, "stored_at": note.stored_at}).data)
