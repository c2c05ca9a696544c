from django.urls import path

from accounts import views

urlpatterns = [
    path("accounts/mfa/", views.mfa_verify, name="mfa-verify"),
    path("accounts/mfa/passkey/options/", views.passkey_sign_in_options, name="passkey-sign-in-options"),
    path("accounts/mfa/passkey/", views.passkey_sign_in, name="passkey-sign-in"),
    path("accounts/sso/", views.sso_start, name="sso-start"),
    path("accounts/sso/callback/", views.sso_callback, name="sso-callback"),
    path("accounts/security/", views.security_page, name="account-security"),
    path("accounts/security/totp/", views.totp_enrol, name="totp-enrol"),
    path("accounts/security/passkeys/options/", views.passkey_register_options, name="passkey-register-options"),
    path("accounts/security/passkeys/", views.passkey_register, name="passkey-register"),
    path("accounts/security/authenticators/<int:authenticator_id>/remove/", views.remove_authenticator,
         name="authenticator-remove"),
    path("accounts/security/recovery-codes/", views.regenerate_recovery_codes, name="recovery-codes"),
    path("accounts/sessions/end-all/", views.sign_out_everywhere, name="sign-out-everywhere"),
    path("settings/sign-in/", views.sign_in_settings, name="tenant-sign-in"),
    path("settings/members/<int:membership_id>/mfa/reset/", views.reset_member_mfa, name="member-mfa-reset"),
]
