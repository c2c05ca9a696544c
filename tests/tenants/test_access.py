import datetime as dt

from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.utils import timezone

from portal.tickets.access import tickets_for_user
from tenants import access
from tenants.models import Tenant
from tests.portal.base import BaseTestCase


class AccessFunctionsTestCase(BaseTestCase):
    def test_tenant_for_user_finds_the_users_tenant(self):
        self.assertEqual(access.tenant_for_user(self.bob), self.tenant_a)
        self.assertEqual(access.tenant_for_user(self.charlie), self.tenant_b)

    def test_tenant_for_user_is_404_without_a_tenant(self):
        for user in (self.victor, AnonymousUser()):
            with self.subTest(user=user), self.assertRaises(Http404):
                access.tenant_for_user(user)

    def test_a_suspended_tenant_is_invisible_to_its_members(self):
        Tenant.objects.filter(pk=self.tenant_a.pk).update(status=Tenant.Status.SUSPENDED)
        with self.assertRaises(Http404):
            access.tenant_for_user(self.alice)
        self.assertFalse(tickets_for_user(self.alice).exists())

    def test_admin_membership_is_403_for_staff(self):
        self.assertTrue(access.admin_membership_for_user(self.alice).is_admin)
        with self.assertRaises(PermissionDenied):
            access.admin_membership_for_user(self.bob)

    def test_access_agent_token_finds_live_tokens_only(self):
        self.assertEqual(access.access_agent_token(self.agent_a_token), self.agent_a)
        self.assertIsNone(access.access_agent_token(""))
        self.assertIsNone(access.access_agent_token(self.agent_a_token + "x"))
        self.agent_a.revoked_at = timezone.now()
        self.agent_a.save()
        self.assertIsNone(access.access_agent_token(self.agent_a_token))

    def test_access_agent_token_records_use_at_most_once_a_minute(self):
        start = timezone.now()
        access.access_agent_token(self.agent_a_token, now=start)
        access.access_agent_token(self.agent_a_token, now=start + dt.timedelta(seconds=30))
        self.agent_a.refresh_from_db()
        self.assertEqual(self.agent_a.last_used_at, start)
        later = start + dt.timedelta(minutes=2)
        access.access_agent_token(self.agent_a_token, now=later)
        self.agent_a.refresh_from_db()
        self.assertEqual(self.agent_a.last_used_at, later)

    def test_agent_tokens_for_admin_filters_by_tenant(self):
        self.assertEqual(list(access.agent_tokens_for_admin(self.charlie)), [self.agent_b])
        with self.assertRaises(Http404):
            access.access_agent_token_for_admin(self.charlie, self.agent_a.id)
        with self.assertRaises(PermissionDenied):
            access.agent_tokens_for_admin(self.bob)

    def test_support_access_is_404_for_everyone_but_vendor_support(self):
        self.assertEqual(access.access_tenant_for_support(self.victor, "alpha"), self.tenant_a)
        for user in (self.alice, self.bob, self.charlie, AnonymousUser()):
            with self.subTest(user=user), self.assertRaises(Http404):
                access.tenants_for_support(user)
