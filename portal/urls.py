from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import TemplateView

from accounts.signin import SignInView
from portal import passwords

urlpatterns = [
    # Django's login form; a second factor, when the account has one, in accounts/signin.py.
    path("accounts/login/", SignInView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/password/change/", passwords.ChangeView.as_view(), name="password_change"),
    path("accounts/password/change/done/", auth_views.PasswordChangeDoneView.as_view(
        template_name="registration/password_change_done.html"), name="password_change_done"),
    path("accounts/password/reset/", passwords.ResetRequestView.as_view(), name="password_reset"),
    path("accounts/password/reset/sent/", auth_views.PasswordResetDoneView.as_view(
        template_name="registration/password_reset_done.html"), name="password_reset_done"),
    path("accounts/password/reset/<uidb64>/<token>/", passwords.ResetConfirmView.as_view(),
         name="password_reset_confirm"),
    path("accounts/password/reset/complete/", auth_views.PasswordResetCompleteView.as_view(
        template_name="registration/password_reset_complete.html"), name="password_reset_complete"),
    # The customer's IdP returns the popup here; the code stays in the fragment (lib/identity.js).
    path("identity/callback/", TemplateView.as_view(template_name="identity_callback.html"), name="identity-callback"),
    path("api/v1/", include("portal.tickets.api_urls")),
    path("", include("portal.tickets.urls")),
    path("", include("accounts.urls")),
    path("", include("portal.moves.urls")),
    path("", include("tenants.urls")),
    path("", include("portal.webhooks.urls")),
]

handler400 = "portal.errors.bad_request"
handler404 = "portal.errors.not_found"
handler500 = "portal.errors.server_error"
