"""A real SMTP server for the tests (aiosmtpd): every delivered message is written,
as received, to DIR/<n>.eml. Run: python -m tests.smtp_sink HOST PORT DIR"""

from __future__ import annotations

import asyncio
import itertools
import sys
from pathlib import Path

from aiosmtpd.controller import Controller


class WriteToDirectory:
    def __init__(self, directory: Path):
        self.directory = directory
        self.numbers = itertools.count(1)

    async def handle_DATA(self, server, session, envelope):
        number = next(self.numbers)
        part = self.directory / f"{number:04d}.eml.part"
        part.write_bytes(envelope.original_content)
        part.rename(self.directory / f"{number:04d}.eml")  # readers never see half a message
        return "250 Message accepted for delivery"


def main(host: str, port: str, directory: str) -> None:
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    controller = Controller(WriteToDirectory(path), hostname=host, port=int(port))
    controller.start()
    print(f"smtp sink on {host}:{port} writing to {path}", flush=True)
    try:
        asyncio.run(asyncio.Event().wait())
    finally:
        controller.stop()


if __name__ == "__main__":
    main(*sys.argv[1:])
