"""Publish the gatekeeper's CloudFormation template and Lambda zips, versioned, to the
vendor's artifact bucket: STORAGES["artifacts"] (django-storages' S3; moto in the demo
and tests).

    manage.py publish_gatekeeper [--zip dist/gatekeeper-1.0.0-py3.12-arm64.zip ...]

Under gatekeeper/<VERSION>/ (VERSION is gatekeeper.VERSION): gatekeeper.yaml, each zip
(`make gatekeeper-zip`; by default every dist/gatekeeper-<VERSION>-*.zip), and beside
each a <name>.sha256. A published version is immutable: the same bytes again are
left alone, other bytes under a published name are refused (bump the version), so a
stack launched from a version's template always gets the code it was tested with.
"""

from __future__ import annotations

import hashlib
import re
import zipfile
from pathlib import Path

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.core.management.base import BaseCommand, CommandError

from gatekeeper import VERSION

TEMPLATE = Path(settings.BASE_DIR) / "deploy" / "aws" / "gatekeeper.yaml"
DIST = Path(settings.BASE_DIR) / "dist"
ZIP_NAME = re.compile(r"^gatekeeper-(?P<version>[^-]+)-py\d+\.\d+-(arm64|x86_64)(-geoip)?\.zip$")


class Command(BaseCommand):
    help = "Publish the gatekeeper's template and Lambda zips, versioned, to STORAGES['artifacts']."

    def add_arguments(self, parser):
        parser.add_argument("--zip", dest="zips", action="append", type=Path, default=[],
                            help="a zip from `make gatekeeper-zip` (repeatable; default: dist/gatekeeper-VERSION-*.zip)")
        parser.add_argument("--template", type=Path, default=TEMPLATE)

    def handle(self, *args, zips: list[Path], template: Path, **options):
        zips = zips or sorted(DIST.glob(f"gatekeeper-{VERSION}-*.zip"))
        if not zips:
            raise CommandError(f"no zip for version {VERSION} in {DIST}: run `make gatekeeper-zip` first")
        artifacts = [(template, "gatekeeper.yaml")] + [(path, self._checked_zip(path)) for path in zips]
        storage = storages["artifacts"]
        for path, name in artifacts:
            data = path.read_bytes()
            digest = hashlib.sha256(data).hexdigest()
            key = f"gatekeeper/{VERSION}/{name}"
            self._publish(storage, key, data)
            self._publish(storage, f"{key}.sha256", f"{digest}  {name}\n".encode())
            self.stdout.write(f"{storage.url(key)}  sha256 {digest}")

    def _checked_zip(self, path: Path) -> str:
        match = ZIP_NAME.match(path.name)
        if not match:
            raise CommandError(f"{path.name}: not a zip from `make gatekeeper-zip`")
        if match["version"] != VERSION:
            raise CommandError(f"{path.name} is version {match['version']}, this checkout is {VERSION}")
        if not zipfile.is_zipfile(path) or "gatekeeper/lambda_handler.py" not in zipfile.ZipFile(path).namelist():
            raise CommandError(f"{path.name} holds no gatekeeper")
        return path.name

    def _publish(self, storage, key: str, data: bytes) -> None:
        if storage.exists(key):
            with storage.open(key, "rb") as published:
                if published.read() == data:
                    self.stdout.write(f"{key}: already published, unchanged")
                    return
            raise CommandError(f"{key} is already published with other bytes: a version is never "
                               f"replaced; bump gatekeeper.VERSION")
        saved = storage.save(key, ContentFile(data))
        if saved != key:  # file_overwrite=False renames on a race: never leave a stray copy
            storage.delete(saved)
            raise CommandError(f"{key} was published meanwhile by someone else; run again to compare")
