from django.urls import path

from portal.tickets import views

urlpatterns = [
    path("", views.home, name="home"),
    path("tickets/", views.ticket_list, name="tickets"),
    path("tickets/<uuid:ticket_id>/", views.report, name="ticket-report"),
    path("tickets/<uuid:ticket_id>/workflow/", views.workflow, name="ticket-workflow"),
]
