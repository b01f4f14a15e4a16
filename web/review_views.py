"""The reviews (复盘) pages (SPEC sections 10 and 12): the list with a form to start a
review, and a review's page with its findings, actions and close. Thin like
``funnel.review_api``: the figures are ``funnel.review_selectors`` (through
``web.pages``), the writes ``funnel.services``; a domain error is a 404 (not visible),
a form's message (422) or a clear conflict (409), swapped in by htmx."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from funnel import review_selectors, services
from funnel.models import Review
from tenancy import errors
from tenancy.models import Membership
from web import pages
from web.forms import ReviewActionForm, ReviewFindingsForm
from web.views import member_page


def _errors_of(error: Exception) -> dict[str, list[str]]:
    """A domain error's messages by field (``Invalid`` carries a dict)."""
    if isinstance(error, DjangoValidationError) and hasattr(error, "message_dict"):
        return {name: [str(m) for m in found] for name, found in error.message_dict.items()}
    if isinstance(error, DjangoValidationError):
        return {"__all__": [str(m) for m in error.messages]}
    return {"__all__": [str(error)]}


def _review(member: Membership, pk: int) -> Review:
    # Out of sight (another tenant's, another rep's) is a 404, like the API.
    return review_selectors.get_visible_review(member, pk)


@member_page
def review_list(request: HttpRequest, member: Membership) -> HttpResponse:
    """The reviews the viewer sees (GET) and starting one (POST, ``review_create``)."""
    context: dict[str, Any] = {"member": member, **pages.reviews(member)}
    if request.method != "POST":
        return render(request, "web/reviews.html", context)
    context["chosen"] = request.POST
    target = pages.review_start_target(member, request.POST)
    if target is None:
        context["problems"] = [
            _("There is no target for this node, plan and period: choose another.")
        ]
        return render(request, "web/reviews.html", context, status=422)
    try:
        review = services.review_create(member=member, target=target)
    except errors.Conflict as error:
        existing = Review.objects.filter(
            series_id=target.series_id, period_code=target.period_code
        ).first()
        context["problems"] = [str(error)]
        context["existing"] = existing
        return render(request, "web/reviews.html", context, status=409)
    except (errors.Forbidden, DjangoValidationError) as error:
        context["problems"] = [m for found in _errors_of(error).values() for m in found]
        return render(request, "web/reviews.html", context, status=422)
    messages.success(request, _("The review was started as a draft."))
    return HttpResponseRedirect(reverse("web:review", args=[review.pk]))


@member_page
def review_detail(request: HttpRequest, member: Membership, pk: int) -> HttpResponse:
    review = _review(member, pk)
    context = {"member": member, **pages.review_page(member, review)}
    if context["editable"]:
        context["action_form"] = ReviewActionForm(owners=context["owners"])
    return render(request, "web/review.html", context)


@require_POST
@member_page
def review_findings(request: HttpRequest, member: Membership, pk: int) -> HttpResponse:
    """Write a draft's findings (``review_update``); the findings block is swapped back."""
    review = _review(member, pk)
    form = ReviewFindingsForm(request.POST)
    context: dict[str, Any] = {"member": member, "review": review, "form": form}
    status = 200
    if form.is_valid():
        try:
            review = services.review_update(
                member=member, review=review, findings=form.cleaned_data["findings"]
            )
        except errors.Conflict as error:
            context["problem"], status = str(error), 409
        else:
            if not getattr(request, "htmx", False):  # a plain form post (no JavaScript)
                return HttpResponseRedirect(reverse("web:review", args=[review.pk]))
            context["review"], context["saved"] = review, True
    else:
        status = 422
    context["editable"] = status != 409
    return render(request, "web/partials/review_findings.html", context, status=status)


@require_POST
@member_page
def review_action_add(request: HttpRequest, member: Membership, pk: int) -> HttpResponse:
    """Add an action item (``review_action_add``); the actions block is swapped back."""
    review = _review(member, pk)
    owners = pages.review_owners(review)
    form = ReviewActionForm(request.POST, owners=owners)
    status = 200
    if form.is_valid():
        data = form.cleaned_data
        try:
            services.review_action_add(
                member=member,
                review=review,
                text=data["text"],
                owner=data["owner"],
                due_date=data["due_date"],
            )
        except errors.Conflict as error:
            form.add_error(None, str(error))
            status = 409
        except DjangoValidationError as error:
            for name, found in _errors_of(error).items():
                for message in found:
                    form.add_error(name if name in form.fields else None, message)
            status = 422
        else:
            if not getattr(request, "htmx", False):  # a plain form post (no JavaScript)
                return HttpResponseRedirect(reverse("web:review", args=[review.pk]))
            form = ReviewActionForm(owners=owners)
    else:
        status = 422
    actions = review_selectors.review_actions([review])[review.pk]
    context = {
        "member": member,
        "review": review,
        "actions": actions,
        "action_form": form,
        "owners": owners,
        "editable": status != 409,
    }
    return render(request, "web/partials/review_actions.html", context, status=status)


@require_POST
@member_page
def review_close(request: HttpRequest, member: Membership, pk: int) -> HttpResponse:
    """Close a draft (``review_close``): the page reloads with the frozen figures; a
    second close is a 409 shown as a message in place of the button."""
    review = _review(member, pk)
    try:
        services.review_close(member=member, review=review)
    except errors.Conflict as error:
        context = {"member": member, "review": review, "problem": str(error)}
        return render(request, "web/partials/review_close.html", context, status=409)
    messages.success(request, _("The review is closed: its figures are frozen."))
    url = reverse("web:review", args=[review.pk])
    if getattr(request, "htmx", False):
        response = HttpResponse(status=204)
        response["HX-Redirect"] = url
        return response
    return HttpResponseRedirect(url)
