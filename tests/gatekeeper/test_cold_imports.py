"""What a Lambda cold start imports: nothing a request does not need
(bench/bench_cold_start.py measures the time). boto3 and s3transfer are most of
the cost and add nothing; the SQLite store and sqlite3 are not used with
DynamoDB; waitress is the self-hosted server's."""

from __future__ import annotations

import json
import subprocess

from tests import support

NOT_NEEDED = ["boto3", "s3transfer", "sqlite3", "gatekeeper.audit_sqlite", "waitress", "gatekeeper.http_server",
              "gatekeeper.cli"]


def loaded_after(code: str) -> list[str]:
    probe = f"import json, sys\n{code}\nprint(json.dumps(sorted(m for m in {NOT_NEEDED!r} if m in sys.modules)))"
    result = subprocess.run([support.PYTHON, "-c", probe], cwd=support.ROOT, capture_output=True, text=True,
                            check=True, env={"PATH": "/usr/bin:/bin", **support.AWS_ENV})
    return json.loads(result.stdout)


def test_the_lambda_handler_imports_none_of_them():
    assert loaded_after("import gatekeeper.lambda_handler") == []


def test_a_gatekeeper_on_dynamodb_loads_only_the_dynamodb_store():
    code = ("from gatekeeper.app import open_store\n"
            "store = open_store('dynamodb://audit', 30, endpoint_url='http://127.0.0.1:9', region='us-east-1')\n"
            "assert type(store).__name__ == 'DynamoAuditStore'")
    assert loaded_after(code) == []


def test_the_sqlite_store_is_imported_when_it_is_the_one(tmp_path):
    code = ("from gatekeeper.app import open_store\n"
            f"open_store('sqlite:///{tmp_path}/audit.db', 30)")
    assert loaded_after(code) == ["gatekeeper.audit_sqlite", "sqlite3"]
