"""Login throttling (django-axes): by account and by address, the same answer for
accounts that do not exist, and a trail of every failure."""

from django.http import HttpRequest
from django.test import override_settings

from tests.portal.base import BaseTestCase

URL = "/accounts/login/"
LIMIT = 5


@override_settings(AXES_FAILURE_LIMIT=LIMIT)
class LoginThrottleTestCase(BaseTestCase):
    def attempt(self, username, password, address="198.51.100.7"):
        return self.client.post(URL, {"username": username, "password": password}, REMOTE_ADDR=address)

    def test_ten_wrong_passwords_then_the_right_one_does_not_log_in(self):
        for _ in range(10):
            self.attempt("alice", "wrong")
        r = self.attempt("alice", "password")
        self.assertEqual(r.status_code, 429)
        self.assertContains(r, "Too many failed sign-ins", status_code=429)
        self.assertNotIn("_auth_user_id", self.client.session)

    def test_it_still_logs_in_after_a_few_typos(self):
        for _ in range(LIMIT - 1):
            self.assertEqual(self.attempt("alice", "wrong").status_code, 200)
        self.assertRedirects(self.attempt("alice", "password"), "/", fetch_redirect_response=False)

    def test_it_locks_the_account_whatever_the_address(self):
        for n in range(LIMIT):
            self.attempt("alice", "wrong", address=f"203.0.113.{n + 1}")
        self.assertEqual(self.attempt("alice", "password", address="192.0.2.99").status_code, 429)
        # Someone else, from yet another address, is not affected.
        self.assertEqual(self.attempt("bob", "password", address="192.0.2.98").status_code, 302)

    def test_it_locks_the_address_whatever_the_account(self):
        for n in range(LIMIT):
            self.attempt(f"guess{n}", "wrong", address="198.51.100.9")
        self.assertEqual(self.attempt("bob", "password", address="198.51.100.9").status_code, 429)
        self.assertEqual(self.attempt("bob", "password", address="198.51.100.10").status_code, 302)

    def test_it_does_not_trust_x_forwarded_for(self):
        for n in range(LIMIT):
            self.client.post(URL, {"username": f"guess{n}", "password": "wrong"}, REMOTE_ADDR="198.51.100.9",
                             HTTP_X_FORWARDED_FOR=f"10.0.0.{n}")
        self.assertEqual(self.attempt("bob", "password", address="198.51.100.9").status_code, 429)

    def test_it_answers_unknown_accounts_exactly_like_real_ones(self):
        for username in ["alice", "no-such-user"]:
            # The failure that reaches the limit is itself answered with the lockout.
            answers = [self.attempt(username, "wrong", address=f"192.0.2.{len(username)}") for _ in range(LIMIT + 1)]
            with self.subTest(username=username):
                self.assertEqual([r.status_code for r in answers], [200] * (LIMIT - 1) + [429, 429])
                self.assertNotContains(answers[-1], username, status_code=429)
        self.assertContains(self.attempt("no-such-user", "x", address="192.0.2.200"),
                            "Too many failed sign-ins", status_code=429)

    def test_it_keeps_a_trail_without_passwords(self):
        from axes.models import AccessAttempt, AccessFailureLog

        self.attempt("alice", "hunter2-secret")
        failure = AccessFailureLog.objects.get()
        self.assertEqual((failure.username, failure.ip_address), ("alice", "198.51.100.7"))
        attempt = AccessAttempt.objects.get()
        self.assertEqual(attempt.failures_since_start, 1)
        self.assertNotIn("hunter2-secret", attempt.post_data)

    def test_an_overlong_username_is_refused_before_it_is_counted(self):
        # It used to reach axes' varchar(255) column: a 500 on PostgreSQL.
        from axes.models import AccessAttempt

        r = self.attempt("x" * 300, "wrong")
        self.assertEqual(r.status_code, 200)
        self.assertTrue(r.context["form"].errors["username"])
        self.assertFalse(AccessAttempt.objects.exists())

    def test_the_test_clients_login_works_with_a_request(self):
        # axes needs the request: tests pass a blank one, as axes' documentation says.
        self.assertTrue(self.client.login(request=HttpRequest(), username="bob", password="password"))
        self.assertEqual(self.client.get("/tickets/").status_code, 200)
