import json
import re
import struct
import zlib
from pathlib import Path

import jsonschema
import pytest

from gatekeeper_client.agent import check_files
from gatekeeper_client.demo_report import BASE_FILE_COUNT, build_demo_report

DOCS = Path(__file__).resolve().parents[2] / "docs"
SCHEMA = json.loads((DOCS / "report.schema.json").read_text())


def report_of(files):
    assert files[0][0] == "report.json"
    return json.loads(files[0][1])


def png_chunks(data: bytes):
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos = 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])
        assert crc == zlib.crc32(kind + body) & 0xFFFFFFFF, kind
        yield kind, body
        pos += 12 + length


def test_the_schema_is_a_valid_json_schema():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


def test_the_doc_embeds_the_same_schema_as_the_file():
    doc = (DOCS / "report-format.md").read_text()
    embedded = re.search(r"```json\n(.*?)\n```", doc, re.S).group(1)
    assert json.loads(embedded) == SCHEMA


@pytest.mark.parametrize("seed", range(8))
def test_reports_validate_against_the_schema(seed):
    jsonschema.validate(report_of(build_demo_report(seed)), SCHEMA,
                        cls=jsonschema.Draft202012Validator)


def test_a_report_is_big_enough_to_be_realistic():
    report = report_of(build_demo_report(1))
    assert len(report["processes"]) >= 40
    assert len(report["event_log"]) >= 50
    assert len(report["resource_usage"]["samples"]) == 60
    assert {e["level"] for e in report["event_log"]} >= {"info", "warning", "error"}


def test_the_same_seed_gives_the_same_bytes_and_another_seed_does_not():
    assert build_demo_report(5, "m") == build_demo_report(5, "m")
    assert build_demo_report(5) != build_demo_report(6)


def test_the_report_names_exactly_the_other_files():
    files = build_demo_report(2)
    report = report_of(files)
    names = {name: content_type for name, _, content_type in files[1:]}
    assert {n: names[n] for n in report["screenshots"]} == dict.fromkeys(report["screenshots"], "image/png")
    assert {n: names[n] for n in report["logs"]} == dict.fromkeys(report["logs"], "text/plain")
    assert len(names) == len(report["screenshots"]) + len(report["logs"])


def test_screenshots_are_valid_pngs():
    for name, data, content_type in build_demo_report(3):
        if content_type != "image/png":
            continue
        chunks = list(png_chunks(data))
        assert [k for k, _ in chunks][0] == b"IHDR" and chunks[-1][0] == b"IEND", name
        width, height, depth, colour, *_ = struct.unpack(">IIBBBBB", chunks[0][1])
        assert (width, height, depth, colour) == (960, 600, 8, 2)
        raw = zlib.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT"))
        assert len(raw) == height * (1 + width * 3)


def test_the_marker_is_planted_in_the_subject_the_message_and_a_log():
    files = build_demo_report(4, marker="MARKER-7f3a")
    assert "MARKER-7f3a" in report_of(files)["subject"]
    assert "MARKER-7f3a" in report_of(files)["message"]
    assert b"MARKER-7f3a" in dict((n, d) for n, d, _ in files)["application.log"]
    assert not any(b"MARKER" in d for _, d, _ in build_demo_report(4))
    marked = report_of(build_demo_report(4, marker="DKMARKER" + "0" * 32))  # the e2e tests' kind of marker
    jsonschema.validate(marked, SCHEMA, cls=jsonschema.Draft202012Validator)


def test_extra_logs_make_a_report_of_any_size():
    files = build_demo_report(1, extra_logs=15)
    assert len(files) == BASE_FILE_COUNT + 15 == 20
    assert len(report_of(files)["logs"]) == 17


def test_every_file_passes_the_agents_manifest_checks():
    check_files(build_demo_report(9, extra_logs=3))


SUMMARY_SCHEMA = json.loads((DOCS / "summary.schema.json").read_text())


@pytest.mark.parametrize("seed", range(1, 6))
def test_the_agents_summaries_of_demo_reports_validate_against_their_schema(seed):
    from gatekeeper_client.agent import summary_of

    jsonschema.Draft202012Validator.check_schema(SUMMARY_SCHEMA)
    summary = json.loads(summary_of(report_of(build_demo_report(seed))))
    jsonschema.validate(summary, SUMMARY_SCHEMA, cls=jsonschema.Draft202012Validator)
    assert summary["subject"] and summary["requester"]["name"] and summary["machine"]["hostname"]
