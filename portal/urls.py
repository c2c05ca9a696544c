from django.contrib.auth import views as auth_views
from django.urls import include, path

from portal.accounts import LoginForm

urlpatterns = [
    path("accounts/login/", auth_views.LoginView.as_view(redirect_authenticated_user=True,
                                                         authentication_form=LoginForm), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("api/v1/", include("portal.tickets.api_urls")),
    path("", include("portal.tickets.urls")),
    path("", include("tenants.urls")),
]

handler400 = "portal.errors.bad_request"
handler404 = "portal.errors.not_found"
handler500 = "portal.errors.server_error"
