from django.urls import path

from portal.webhooks import views

urlpatterns = [
    path("settings/webhooks/", views.webhooks_page, name="webhooks"),
    path("settings/webhooks/add/", views.add_endpoint, name="webhook-add"),
    path("settings/webhooks/<int:endpoint_id>/enabled/", views.set_enabled, name="webhook-enabled"),
    path("settings/webhooks/<int:endpoint_id>/delete/", views.delete_endpoint, name="webhook-delete"),
    path("settings/webhooks/<int:endpoint_id>/test/", views.send_test, name="webhook-test"),
]
