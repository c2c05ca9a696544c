"""Runs after Django's authentication: ends expired sessions (accounts/sessions.py),
then holds back a person who must enrol a second factor (accounts/policy.py)."""

from __future__ import annotations

from django.contrib import messages
from django.http import JsonResponse
from django.shortcuts import redirect

from accounts import policy, sessions

ENDED = {
    "idle": "You were signed out after a while without activity. Sign in again.",
    "absolute": "Your session reached its maximum length. Sign in again.",
    "signed_out_everywhere": "You were signed out on every device. Sign in again.",
    "unstamped": "Sign in again.",
}


class SignInPolicyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        reason = sessions.enforce(request)
        if reason:
            messages.info(request, ENDED[reason])
        elif request.user.is_authenticated and policy.must_enrol(request) and not policy.enrol_exempt(request.path):
            if request.path.startswith("/api/"):
                return JsonResponse({"error": "mfa_enrolment_required",
                                     "detail": "Enrol a second factor first (/accounts/security/)."}, status=403)
            return redirect("account-security")
        return self.get_response(request)
