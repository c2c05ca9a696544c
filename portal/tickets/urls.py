from django.urls import path

from portal.tickets import views

urlpatterns = [
    path("", views.home, name="home"),
    path("tickets/", views.ticket_list, name="tickets"),
    path("tickets/<uuid:ticket_id>/", views.report, name="ticket-report"),
    path("tickets/<uuid:ticket_id>/workflow/", views.workflow, name="ticket-workflow"),
    path("tickets/<uuid:ticket_id>/erase/", views.erase, name="ticket-erase"),
    path("tickets/<uuid:ticket_id>/erase/grant", views.erase_grant, name="ticket-erase-grant"),
    path("tickets/<uuid:ticket_id>/erase/done", views.erase_done, name="ticket-erase-done"),
    path("tickets/<uuid:ticket_id>/erase/receipt.json", views.erase_receipt, name="ticket-erase-receipt"),
    path("support/access/<uuid:access_id>/", views.support_report, name="support-access-report"),
    path("support/access/<uuid:access_id>/grant", views.support_grant, name="support-access-grant"),
]
