"""People's sign-in beyond Django's password: session limits, MFA (TOTP, passkeys,
recovery codes), and per-tenant single sign-on (OpenID Connect). docs/portal.md,
"Accounts, MFA and SSO"."""
