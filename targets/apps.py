from django.apps import AppConfig


class TargetsConfig(AppConfig):
    name = "targets"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from crm.signals import demo_seeded
        from targets.demo import seed_demo_plans

        demo_seeded.connect(seed_demo_plans, dispatch_uid="targets_demo_plans")
