from django.urls import path

from portal.moves import views

urlpatterns = [
    path("settings/moves/", views.move_list, name="moves"),
    path("settings/moves/new/", views.move_start, name="move-start"),
    path("settings/moves/<uuid:job_id>/", views.move_job, name="move-job"),
    path("settings/moves/<uuid:job_id>/progress", views.move_progress, name="move-progress"),
    path("settings/moves/<uuid:job_id>/copier/", views.move_copier, name="move-copier"),
    path("settings/moves/<uuid:job_id>/<str:action>/", views.move_change, name="move-change"),
    path("settings/moves/<uuid:job_id>/own-tools/<str:name>", views.own_tools, name="move-own-tools"),
    path("settings/moves/<uuid:job_id>/carrier/claim", views.carrier_claim, name="move-claim"),
    path("settings/moves/<uuid:job_id>/carrier/sweep", views.carrier_sweep, name="move-sweep"),
    path("settings/moves/<uuid:job_id>/carrier/renew", views.carrier_renew, name="move-renew"),
    path("settings/moves/<uuid:job_id>/carrier/objects/<int:object_id>/grants", views.carrier_grants,
         name="move-object-grants"),
    path("settings/moves/<uuid:job_id>/carrier/objects/<int:object_id>/copied", views.carrier_copied,
         name="move-object-copied"),
    path("settings/moves/<uuid:job_id>/carrier/objects/<int:object_id>/verified", views.carrier_verified,
         name="move-object-verified"),
    path("settings/moves/<uuid:job_id>/carrier/objects/<int:object_id>/failed", views.carrier_failed,
         name="move-object-failed"),
    path("settings/moves/<uuid:job_id>/carrier/tickets/<int:move_id>/erase-grant", views.carrier_erase_grant,
         name="move-erase-grant"),
    path("settings/moves/<uuid:job_id>/carrier/tickets/<int:move_id>/erased", views.carrier_erased,
         name="move-erased"),
    path("settings/moves/<uuid:job_id>/tickets/<int:move_id>/receipt.json", views.move_receipt,
         name="move-receipt"),
    path("support/tenants/<slug:slug>/moves/", views.support_move_list, name="support-moves"),
    path("support/tenants/<slug:slug>/moves/<uuid:job_id>/", views.support_move_job, name="support-move-job"),
    path("support/tenants/<slug:slug>/moves/<uuid:job_id>/progress", views.support_move_progress,
         name="support-move-progress"),
]
