"""What a Lambda cold start imports: nothing a request does not need
(bench/bench_cold_start.py measures the time). boto3 and s3transfer are most of
the cost and add nothing; botocore is needed only to list, erase and HEAD the
bucket (the audit store and the presigner sign by hand); the SQLite store and
sqlite3 are not used with DynamoDB; waitress is the self-hosted server's."""

from __future__ import annotations

import json
import subprocess

from gatekeeper_client.grants import mint_grant
from tests import support

from .conftest import GATEKEEPER_ID, ISSUER, ORIGIN, VENDOR_KEY
from .test_lambda import function_url_event

NOT_NEEDED = ["boto3", "s3transfer", "botocore", "sqlite3", "gatekeeper.audit_sqlite", "waitress",
              "gatekeeper.http_server", "gatekeeper.cli"]


def loaded_after(code: str, env: dict | None = None) -> list[str]:
    probe = f"import json, sys\n{code}\nprint(json.dumps(sorted(m for m in {NOT_NEEDED!r} if m in sys.modules)))"
    result = subprocess.run([support.PYTHON, "-c", probe], cwd=support.ROOT, capture_output=True, text=True,
                            check=True, env={"PATH": "/usr/bin:/bin", **support.AWS_ENV, **(env or {})})
    return json.loads(result.stdout.splitlines()[-1])


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


def test_a_cold_start_signs_its_first_get_without_botocore_and_lists_with_it(moto_url, s3):
    """The bench's cold start (a get on the DynamoDB store: DescribeTable, the audit
    write, the presigned URL), then a list in the same process, which needs botocore."""
    from gatekeeper.app import open_store

    bucket, table = "cold-imports-reports", "cold-imports-audit"
    s3.create_bucket(Bucket=bucket)
    open_store(f"dynamodb://{table}", 30, endpoint_url=moto_url).create_table()
    grant = mint_grant(VENDOR_KEY, issuer=ISSUER, audience=GATEKEEPER_ID, subject="user:1", prefix="tickets/1/",
                       ops=["get", "list"])
    events = [function_url_event("/v1/sign", body={"ops": [op]}, headers={"authorization": f"Bearer {grant}"})
              for op in ({"op": "get", "key": "tickets/1/report.json"}, {"op": "list", "prefix": "tickets/1/"})]
    env = {"GATEKEEPER_GATEKEEPER_ID": GATEKEEPER_ID, "GATEKEEPER_ISSUER": ISSUER,
           "GATEKEEPER_ALLOWED_ORIGINS": ORIGIN, "GATEKEEPER_VENDOR_KEYS": f"{VENDOR_KEY.kid}:{VENDOR_KEY.public_b64}",
           "GATEKEEPER_STORAGE_BUCKET": bucket, "GATEKEEPER_STORAGE_REGION": "us-east-1",
           "GATEKEEPER_STORAGE_ENDPOINT_URL": moto_url, "GATEKEEPER_AUDIT_URL": f"dynamodb://{table}"}
    answer = ("from gatekeeper.lambda_handler import handler\n"
              "answer = handler({!r})\n"
              "assert answer['statusCode'] == 200 and 'url' in json.loads(answer['body'])['results'][0], answer")
    assert loaded_after(answer.format(events[0]), env) == []
    both = answer.format(events[0]) + "\n" + answer.format(events[1]).replace("'url'", "'objects'")
    assert loaded_after(both, env) == ["botocore"]
