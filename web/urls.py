from django.contrib.auth.views import LogoutView
from django.urls import path

from web import views

app_name = "web"

urlpatterns = [
    path("login/", views.WebLoginView.as_view(), name="login"),
    path("logout/", LogoutView.as_view(next_page="web:login"), name="logout"),
    path("", views.my_day, name="my-day"),
    path("team/", views.team, name="team"),
    path(
        "adjustments/<int:pk>/<str:decision>/",
        views.adjustment_decide,
        name="adjustment-decide",
    ),
    path("statements/<int:pk>/approve/", views.statement_approve, name="statement-approve"),
    path("targets/<int:public_id>/adjust/", views.target_adjust, name="target-adjust"),
    path("plans/", views.plans, name="plans"),
    path("plans/<int:pk>/decompose/<str:mode>/", views.plan_decompose, name="plan-decompose"),
    path("plans/<int:pk>/<str:action>/", views.plan_status, name="plan-status"),
    path("incentives/", views.incentives, name="incentives"),
]
