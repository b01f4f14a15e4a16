"""The pages' forms. The decomposition form is checked by the API's own serializer, so
the page accepts exactly what ``POST /target-plans/{id}/decompose/`` accepts."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from targets.api import DecomposeSerializer
from targets.models import AdjustmentTrigger
from targets.services import DecomposeSettings


class AdjustForm(forms.Form):
    new_value = forms.DecimalField(
        label=_("New target"), min_value=Decimal(0), max_digits=18, decimal_places=2
    )
    reason = forms.CharField(
        label=_("Reason"), max_length=2000, widget=forms.Textarea(attrs={"rows": 3})
    )
    trigger = forms.ChoiceField(label=_("Why"), choices=AdjustmentTrigger.choices)
    version = forms.IntegerField(widget=forms.HiddenInput, required=False, min_value=1)


TIME_METHODS = [("equal", _("Equal months")), ("seasonal", _("Seasonal (last year's months)"))]
ORG_METHODS = [
    ("equal", _("Equal shares")),
    ("history", _("By last year's results")),
    ("blend", _("Blend of history and equal shares")),
]


class DecomposeForm(forms.Form):
    time_method = forms.ChoiceField(label=_("Over the months"), choices=TIME_METHODS)
    org_method = forms.ChoiceField(label=_("Over the org tree"), choices=ORG_METHODS)
    alpha = forms.DecimalField(
        label=_("Blend: weight of history (0 to 1)"),
        required=False,
        min_value=Decimal(0),
        max_value=Decimal(1),
        decimal_places=4,
    )
    headroom = forms.DecimalField(
        label=_("Headroom (0 to 1)"),
        initial=Decimal(0),
        min_value=Decimal(0),
        max_value=Decimal(1),
        decimal_places=4,
    )
    ramp = forms.BooleanField(label=_("Ramp up new reps"), required=False, initial=True)
    include_managers = forms.BooleanField(label=_("Managers carry targets too"), required=False)

    def decompose_settings(self) -> DecomposeSettings | None:
        """The settings, validated by the API's serializer; its errors become the form's."""
        if not self.is_valid():
            return None
        data: dict[str, Any] = {
            key: value for key, value in self.cleaned_data.items() if value is not None
        }
        serializer = DecomposeSerializer(data={**data, "dry_run": True})
        if not serializer.is_valid():
            for name, messages in serializer.errors.items():
                for message in messages:
                    self.add_error(name if name in self.fields else None, str(message))
            return None
        return serializer.settings()
