import os

import pytest

from tests import support

for _name, _value in support.AWS_ENV.items():
    os.environ.setdefault(_name, _value)


@pytest.fixture(scope="session")
def moto_url(tmp_path_factory):
    """moto's real S3 + DynamoDB server, one per test session (per xdist worker)."""
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    proc, url = support.start_moto(log)
    yield url
    support.stop_process(proc)
