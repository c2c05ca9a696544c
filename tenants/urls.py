from django.urls import path

from tenants import views

urlpatterns = [
    path("settings/", views.settings_page, name="tenant-settings"),
    path("settings/storage/", views.update_storage, name="tenant-storage"),
    path("settings/gatekeeper.toml", views.download_gatekeeper_toml, name="gatekeeper-toml"),
    path("settings/keys/next/", views.prepare_signing_key, name="signing-key-prepare"),
    path("settings/keys/activate/", views.activate_signing_key, name="signing-key-activate"),
    path("settings/tokens/", views.create_token, name="agent-token-create"),
    path("settings/tokens/<int:token_id>/revoke/", views.revoke_token, name="agent-token-revoke"),
    path("settings/members/", views.members_page, name="tenant-members"),
    path("settings/members/invite/", views.invite_member, name="member-invite"),
    path("settings/members/<int:membership_id>/role/", views.change_member_role, name="member-role"),
    path("settings/members/<int:membership_id>/remove/", views.remove_member_view, name="member-remove"),
    path("settings/members/invitations/<int:invitation_id>/resend/", views.resend_member_invitation,
         name="member-invitation-resend"),
    path("settings/members/invitations/<int:invitation_id>/revoke/", views.revoke_member_invitation,
         name="member-invitation-revoke"),
    path("audit/", views.audit_page, name="tenant-audit"),
    path("support/", views.support_home, name="support"),
    path("support/tenants/new/", views.support_create_tenant, name="support-tenant-create"),
    path("support/tenants/<slug:slug>/", views.support_tenant, name="support-tenant"),
    path("support/tenants/<slug:slug>/invite/", views.support_invite_admin, name="support-invite-admin"),
    path("support/tenants/<slug:slug>/invitations/<int:invitation_id>/resend/", views.support_resend_invitation,
         name="support-invitation-resend"),
    path("support/tenants/<slug:slug>/invitations/<int:invitation_id>/revoke/", views.support_revoke_invitation,
         name="support-invitation-revoke"),
    path("invitations/accept/", views.accept_invitation, name="invitation-accept"),
    path("support/tenants/<slug:slug>/status/", views.support_set_status, name="support-tenant-status"),
]
