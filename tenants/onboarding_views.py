"""The onboarding verification's two endpoints, for the settings page's script
(static/js/settings/verify.js), tenant admins only (staff 403, anyone without a
live tenant 404; session and CSRF):

- POST /settings/onboarding/probe-grant: grants for one fresh probe object at the
  tenant's gatekeeper (tenants/onboarding.py, `probe_grants`);
- POST /settings/onboarding/verification: what the browser found, pass or fail per
  check (no content, no URL but the gatekeeper's own), recorded as the verified step.

The portal never contacts the gatekeeper: the browser does, and says what it saw.
"""

import json

from django.contrib.auth.decorators import login_required
from django.http import JsonResponse
from django.views.decorators.http import require_POST

from tenants import onboarding
from tenants.access import tenant_for_admin


def _refusal(status: int, error: str, message: str) -> JsonResponse:
    return JsonResponse({"error": error, "message": message}, status=status)


def _answer(data: dict) -> JsonResponse:
    return JsonResponse(data)


@login_required
@require_POST
def probe_grant(request):
    tenant = tenant_for_admin(request.user)
    target = onboarding.target_for(tenant)
    if not target.connected:
        return _refusal(409, "no_gatekeeper", "No gatekeeper is connected: save its URL and id first.")
    grants = onboarding.probe_grants(tenant, request.user)
    return _answer({
        "gatekeeper_url": target.gatekeeper_url, "gatekeeper_id": target.gatekeeper_id, "key": grants.key,
        "prefix": grants.prefix, "content_type": onboarding.PROBE_CONTENT_TYPE,
        "grants": {"put": grants.put, "get": grants.get, "delete": grants.delete},
        "expires_at": grants.expires_at.isoformat(),
    })


@login_required
@require_POST
def verification_report(request):
    tenant = tenant_for_admin(request.user)
    if len(request.body) > onboarding.MAX_REPORT_BYTES:
        return _refusal(413, "too_large", f"A report is at most {onboarding.MAX_REPORT_BYTES} bytes.")
    if request.content_type != "application/json":
        return _refusal(415, "not_json", "Send the report as application/json.")
    try:
        data = json.loads(request.body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return _refusal(400, "malformed_json", "The report is not valid JSON.")
    try:
        checks = onboarding.parse_report(data, tenant)
    except onboarding.ReportError as error:
        return _refusal(error.status, "bad_report" if error.status == 400 else "stale_report", str(error))
    row = onboarding.record_verification(tenant, request.user, checks)
    return _answer({"step": row.step, "state": row.state, "at": row.at.isoformat(), "by": row.actor_name})
