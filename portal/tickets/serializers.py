from collections.abc import Mapping

from drf_spectacular.extensions import OpenApiSerializerExtension
from rest_framework import serializers
from rest_framework.exceptions import ErrorDetail

from portal.tickets import manifest
from portal.tickets.models import Ticket, TicketFile


class StrictCharField(serializers.CharField):
    """DRF's CharField turns 7 into "7"; a manifest that sends a number for a name
    is broken and should hear so."""

    default_error_messages = {"not_a_string": "Must be a string."}

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("not_a_string")
        return super().to_internal_value(data)


class StrictRegexField(StrictCharField, serializers.RegexField):
    pass


class StrictIntegerField(serializers.IntegerField):
    """A JSON integer: DRF's IntegerField also takes the string "5". (5.0 is an
    integer to JSON Schema too, and is taken; 5.5 is not.)"""

    def to_internal_value(self, data):
        if isinstance(data, (str, bool)):
            self.fail("invalid")
        return super().to_internal_value(data)


class QueryIntegerField(serializers.IntegerField):
    """A query-string integer: decimal digits, given once. DRF's reads " 5", "+5"
    and "5.0" as 5, an empty value as no value, and a repeated one as its last."""

    default_error_messages = {"invalid": "A whole number in decimal digits, given once."}

    def get_value(self, dictionary):
        if not hasattr(dictionary, "getlist"):
            return super().get_value(dictionary)
        values = dictionary.getlist(self.field_name)
        if not values:
            return serializers.empty
        return values[0] if len(values) == 1 else values

    def to_internal_value(self, data):
        if not (isinstance(data, str) and data.isascii() and data.isdigit()):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictSerializer(serializers.Serializer):
    """Refuses a field it does not know, by name: `{"name": ["Unknown field."]}`
    (next to any other field's errors). DRF's Serializer drops unknown fields
    quietly; an agent sending one (say, an old agent's `subject`, which is what
    the user typed and must not reach the vendor) should hear so, and change.
    The schema says it too: `additionalProperties: false` (StrictSerializerExtension).
    Only names are echoed back, never values."""

    # Why a particular unknown field is refused, where there is more to say.
    unknown_field_reasons: dict[str, str] = {}

    def to_internal_value(self, data):
        unknown = [name for name in data if name not in self.fields] if isinstance(data, Mapping) else []
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as error:
            if not unknown:
                raise
            errors = dict(error.detail)  # a Mapping's errors are a dict of field errors
        else:
            if not unknown:
                return value
            errors = {}
        for name in unknown:
            reason = self.unknown_field_reasons.get(name, "Unknown field.")
            errors[name] = [ErrorDetail(reason, code="unknown_field")]
        raise serializers.ValidationError(errors)


class StrictSerializerExtension(OpenApiSerializerExtension):
    """What drf-spectacular makes of the serializer, plus `additionalProperties:
    false`: a client reading the schema knows unknown fields are refused."""

    target_class = StrictSerializer
    match_subclasses = True

    def map_serializer(self, auto_schema, direction):
        schema = auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
        return {**schema, "additionalProperties": False}


class FileEntrySerializer(StrictSerializer):
    name = StrictRegexField(
        manifest.FILE_NAME_RE,
        max_length=200,
        trim_whitespace=False,  # a key is exact: " a.png" is refused, not quietly trimmed
        error_messages={"invalid": "1-200 characters of A-Z a-z 0-9 . _ -, starting with a letter or digit."},
    )
    size = StrictIntegerField(min_value=1, max_value=manifest.MAX_FILE_SIZE)
    content_type = serializers.ChoiceField(choices=manifest.CONTENT_TYPES)
    sha256 = StrictRegexField(
        manifest.SHA256_RE, trim_whitespace=False, error_messages={"invalid": "64 hexadecimal characters."}
    )

    def validate_sha256(self, value: str) -> str:
        return value.lower()


class TicketCreateSerializer(StrictSerializer):
    """The file manifest, and nothing the user typed: the subject, the message and
    everything else of the report go only to the tenant's storage (report.json)."""

    unknown_field_reasons = {
        "subject": "Not taken: the subject is what the user typed, report content, which the portal "
        "does not hold. Put it in report.json, in the tenant's storage.",
    }
    files = serializers.ListField(
        child=FileEntrySerializer(), min_length=1, max_length=manifest.MAX_FILES,
        help_text="File names must be unique within a ticket (a rule JSON Schema cannot state).",
    )

    def validate_files(self, files: list[dict]) -> list[dict]:
        names = [entry["name"] for entry in files]
        if len(names) != len(set(names)):
            raise serializers.ValidationError("File names must be unique within a ticket.")
        return files


class TicketFileSerializer(serializers.ModelSerializer):
    class Meta:
        model = TicketFile
        fields = ["name", "size", "content_type", "sha256", "key"]


class TicketSummarySerializer(serializers.ModelSerializer):
    prefix = serializers.CharField(read_only=True)

    class Meta:
        model = Ticket
        fields = ["id", "number", "status", "created_at", "completed_at", "prefix"]


class TicketDetailSerializer(TicketSummarySerializer):
    files = TicketFileSerializer(many=True, read_only=True)

    class Meta(TicketSummarySerializer.Meta):
        fields = TicketSummarySerializer.Meta.fields + ["files"]


class TicketCreatedSerializer(serializers.Serializer):
    """The answer to an agent: the ticket, and what it needs to upload."""

    id = serializers.UUIDField()
    number = serializers.IntegerField()
    status = serializers.CharField()
    prefix = serializers.CharField()
    # Named so the agent can refuse a portal that points it at another gatekeeper
    # than the one its own configuration pins (docs/agent.md).
    gatekeeper_url = serializers.CharField()
    gatekeeper_id = serializers.CharField()
    grant = serializers.CharField()
    grant_expires_at = serializers.DateTimeField()
    files = TicketFileSerializer(many=True)


class TicketCompletedSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    status = serializers.CharField()


class ReadGrantSerializer(serializers.Serializer):
    grant = serializers.CharField()
    gatekeeper_url = serializers.CharField()
    prefix = serializers.CharField()
    expires_at = serializers.DateTimeField()


class PutGrantSerializer(ReadGrantSerializer):
    """A fresh put grant for an unfinished ticket (single-use, like the first),
    naming the gatekeeper id as the ticket's creation does."""

    gatekeeper_id = serializers.CharField()


class AuditGrantSerializer(serializers.Serializer):
    grant = serializers.CharField()
    gatekeeper_url = serializers.CharField()
    expires_at = serializers.DateTimeField()


class TicketListQuerySerializer(serializers.Serializer):
    number = QueryIntegerField(required=False, min_value=1)
    page = QueryIntegerField(required=False, min_value=1)  # read by the paginator; a page past the last is its 404


class TicketPageSerializer(serializers.Serializer):
    """GET /api/v1/tickets: DRF's page-number pagination, 25 a page."""

    count = serializers.IntegerField(min_value=0)
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = TicketSummarySerializer(many=True)


class ErrorSerializer(serializers.Serializer):
    """Every refusal but a validation error: `{"detail": "reason"}`."""

    detail = serializers.CharField()


class SummaryGrantRequestSerializer(StrictSerializer):
    tickets = serializers.ListField(
        child=serializers.UUIDField(), min_length=1, max_length=50,
        help_text="The tickets of one list page (at most 50), each at most once.",
    )

    def validate_tickets(self, tickets):
        if len(tickets) != len(set(tickets)):
            raise serializers.ValidationError("Each ticket at most once.")
        return tickets


class SummaryKeySerializer(serializers.Serializer):
    id = serializers.UUIDField()
    prefix = serializers.CharField()
    key = serializers.CharField(help_text="Where the ticket's summary.json is, if its agent wrote one.")


class SummaryGrantSerializer(serializers.Serializer):
    grant = serializers.CharField(help_text="A get-only grant whose scope lists every ticket's prefix.")
    gatekeeper_url = serializers.CharField()
    expires_at = serializers.DateTimeField()
    tickets = SummaryKeySerializer(many=True)


MAX_NOTE_BYTES = 16 * 1024
NOTE_CONTENT_TYPE = "text/plain; charset=utf-8"


class NoteCreateSerializer(StrictSerializer):
    size = StrictIntegerField(min_value=1, max_value=MAX_NOTE_BYTES,
                              help_text="The note's UTF-8 length in bytes; the upload must be exactly this size.")


class NoteCreatedSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    key = serializers.CharField()
    size = serializers.IntegerField()
    content_type = serializers.CharField()
    grant = serializers.CharField(help_text="Single-use put grant for the note's own prefix.")
    gatekeeper_url = serializers.CharField()
    expires_at = serializers.DateTimeField()


class NoteStoredSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    stored_at = serializers.DateTimeField()
