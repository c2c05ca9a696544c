from django.apps import AppConfig


class MovesConfig(AppConfig):
    name = "portal.moves"
    label = "moves"
    default_auto_field = "django.db.models.BigAutoField"
