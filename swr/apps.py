from django.apps import AppConfig


class SwrConfig(AppConfig):
    name = "swr"
    verbose_name = "Software repository"
