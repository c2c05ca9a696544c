"""/api/v1/: no trailing slashes, as documented in docs/portal.md."""

from django.urls import path
from drf_spectacular.views import SpectacularAPIView

from portal.tickets import api
from portal.tickets.docs import api_docs

urlpatterns = [
    path("tickets", api.tickets, name="api-tickets"),
    path("tickets/summary-grant", api.summary_grant, name="api-summary-grant"),
    path("tickets/<uuid:ticket_id>", api.ticket_detail, name="api-ticket"),
    path("tickets/<uuid:ticket_id>/notes", api.notes, name="api-ticket-notes"),
    path("tickets/<uuid:ticket_id>/notes/<uuid:note_id>/stored", api.note_stored, name="api-note-stored"),
    path("tickets/<uuid:ticket_id>/complete", api.ticket_complete, name="api-ticket-complete"),
    path("tickets/<uuid:ticket_id>/put-grant", api.ticket_put_grant, name="api-ticket-put-grant"),
    path("tickets/<uuid:ticket_id>/grant", api.ticket_grant, name="api-ticket-grant"),
    path("audit/grant", api.audit_grant, name="api-audit-grant"),
    path("schema", SpectacularAPIView.as_view(permission_classes=[], authentication_classes=[]), name="api-schema"),
    path("docs", api_docs, name="api-docs"),
]
