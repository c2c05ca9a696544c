from rest_framework import serializers

from portal.tickets import manifest
from portal.tickets.models import Ticket, TicketFile


def _no_control_characters(value: str) -> None:
    if any(ord(char) < 32 or ord(char) == 127 for char in value):
        raise serializers.ValidationError("Control characters are not allowed.")


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


class FileEntrySerializer(serializers.Serializer):
    name = StrictRegexField(
        manifest.FILE_NAME_RE,
        max_length=200,
        trim_whitespace=False,  # a key is exact: " a.png" is refused, not quietly trimmed
        error_messages={"invalid": "1-200 characters of A-Z a-z 0-9 . _ -, starting with a letter or digit."},
    )
    size = serializers.IntegerField(min_value=1, max_value=manifest.MAX_FILE_SIZE)
    content_type = serializers.ChoiceField(choices=manifest.CONTENT_TYPES)
    sha256 = StrictRegexField(
        manifest.SHA256_RE, trim_whitespace=False, error_messages={"invalid": "64 hexadecimal characters."}
    )

    def validate_sha256(self, value: str) -> str:
        return value.lower()


class TicketCreateSerializer(serializers.Serializer):
    subject = StrictCharField(max_length=manifest.MAX_SUBJECT, validators=[_no_control_characters])
    files = serializers.ListField(
        child=FileEntrySerializer(), min_length=1, max_length=manifest.MAX_FILES
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
        fields = ["id", "number", "subject", "status", "created_at", "completed_at", "prefix"]


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
    gatekeeper_url = serializers.CharField()
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


class AuditGrantSerializer(serializers.Serializer):
    grant = serializers.CharField()
    gatekeeper_url = serializers.CharField()
    expires_at = serializers.DateTimeField()


class TicketListQuerySerializer(serializers.Serializer):
    number = serializers.IntegerField(required=False, min_value=1)
