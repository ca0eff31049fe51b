"""The operator's console: teams with usage vs plan, people, invitations, API keys, the ledger.

Every action writes a LogEntry (the admin's history) through `log_change`."""
from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import UserChangeForm, UserCreationForm
from django.db import transaction
from django.template.response import TemplateResponse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from accounts.api_keys import apikey_revoke
from accounts.models import ApiKey, Invitation, Membership, Team, UsageEntry, User
from accounts.quotas import format_bytes, render_minutes_grant, team_suspend_set
from accounts.roles import OWNER
from accounts.services import last_owner_check, membership_change_check, membership_is_last_owner
from accounts.tokens import revoke_once
from accounts.usage import USAGE_FRACTIONS, near_limit_q, teams_with_usage

# --- Users ---------------------------------------------------------------------------------

class EmailUserCreationForm(UserCreationForm):
    class Meta:
        model = User
        fields = ("email", "display_name")


class EmailUserChangeForm(UserChangeForm):
    class Meta:
        model = User
        fields = "__all__"



def revoke_each(model_admin, request, queryset, revoke) -> None:
    """The admin's "Revoke" action for rows with a revoked_at (API keys, share links): each live
    row through its own service, each logged."""
    for obj in queryset.filter(revoked_at__isnull=True):
        revoke(obj)
        model_admin.log_change(request, obj, "Revoked")

@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    """Django's user admin for a user who signs in with an email (username mirrors it)."""

    form = EmailUserChangeForm
    add_form = EmailUserCreationForm
    list_display = ("email", "display_name", "team_list", "is_staff", "is_active", "last_login", "date_joined")
    list_filter = ("is_staff", "is_superuser", "is_active")
    search_fields = ("email", "display_name")
    ordering = ("email",)
    readonly_fields = ("username", "last_login", "date_joined")
    fieldsets = (
        (None, {"fields": ("email", "username", "password")}),
        (_("Profile"), {"fields": ("display_name", "language")}),
        (_("Permissions"), {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")}),
        (_("Important dates"), {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "display_name", "password1", "password2")}),)

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("memberships__team")

    @admin.display(description=_("teams"))
    def team_list(self, obj):
        return ", ".join(f"{m.team.name} ({m.role})" for m in obj.memberships.all())

    def save_model(self, request, obj, form, change):
        obj.username = obj.email  # the email is the login; keep the mirror in step
        super().save_model(request, obj, form, change)


# --- Teams ---------------------------------------------------------------------------------

class MembershipInlineFormSet(forms.BaseInlineFormSet):
    """The admin keeps the portal's rule (accounts.services.last_owner_check): a team never
    loses its last owner."""

    def clean(self):
        super().clean()
        if not self.instance.pk:
            return
        before = set(Membership.objects.filter(team=self.instance, role=OWNER).values_list("pk", flat=True))
        owners = set(before)
        for f in self.forms:
            if not f.cleaned_data:
                continue
            deleted = f.cleaned_data.get("DELETE")
            if f.instance.pk and (deleted or f.cleaned_data.get("role") != OWNER):
                owners.discard(f.instance.pk)
            elif not deleted and f.cleaned_data.get("role") == OWNER:
                owners.add(f.instance.pk or id(f))
        last_owner_check(owners_before=before, owners_after=owners)


class MembershipAdminForm(forms.ModelForm):
    class Meta:
        model = Membership
        fields = ("team", "user", "role", "created")

    def clean(self):
        data = super().clean()
        if self.instance.pk and data.get("role"):
            membership_change_check(membership=self.instance, role=data["role"])
        return data


class MembershipInline(admin.TabularInline):
    model = Membership
    formset = MembershipInlineFormSet
    extra = 0
    autocomplete_fields = ("user",)
    fields = ("user", "role", "created")
    readonly_fields = ("created",)


class NearLimitFilter(admin.SimpleListFilter):
    title = _("usage")
    parameter_name = "usage"

    def __init__(self, request, params, model, model_admin):
        # The fractions the admin's queryset annotates (jobs.admin adds renders in flight).
        self.usage_fractions = getattr(model_admin, "usage_fractions", USAGE_FRACTIONS)
        super().__init__(request, params, model, model_admin)

    def lookups(self, request, model_admin):
        return [
            # xgettext:no-python-format
            ("near", _("over 80 % of a limit")),
            # xgettext:no-python-format
            ("ok", _("under 80 % of every limit")),
        ]

    def queryset(self, request, queryset):
        near = near_limit_q(self.usage_fractions)
        if self.value() == "near":
            return queryset.filter(near)
        if self.value() == "ok":
            return queryset.exclude(near)
        return queryset


class GrantMinutesForm(forms.Form):
    minutes = forms.FloatField(label=_("Extra render minutes (this month)"), min_value=0.1)
    note = forms.CharField(label=_("Note (why)"), max_length=150)


def meter_html(used_text: str, limit_text: str, fraction) -> str:
    fraction = fraction or 0.0
    style = "color:#ba2121;font-weight:bold" if fraction >= 0.8 else ""
    return format_html('<span style="{}">{} / {} ({}%)</span>', style, used_text, limit_text, int(round(fraction * 100)))


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    """Teams against their plan. jobs.admin extends it with what needs renders (renders in
    flight, purging expired outputs): accounts sits below jobs."""

    list_display = ("name", "slug", "member_count", "storage_column", "minutes_column", "suspended", "created")
    list_filter = ("suspended", NearLimitFilter)
    usage_fractions = USAGE_FRACTIONS
    search_fields = ("name", "slug", "memberships__user__email")
    prepopulated_fields = {"slug": ("name",)}
    inlines = [MembershipInline]
    readonly_fields = ("storage_bytes_used", "render_seconds_month", "render_month_key", "created")
    actions = ["suspend_teams", "resume_teams", "grant_minutes"]
    fieldsets = (
        (None, {"fields": ("name", "slug", "suspended", "created")}),
        (_("Plan (empty = the default from settings)"), {"fields": (
            "storage_bytes_limit", "render_minutes_limit", "max_concurrent_renders", "priority_ceiling",
            "retention_days", "template_max_bytes", "template_max_seconds", "audio_max_bytes", "audio_max_seconds",
        )}),
        (_("Usage (from the ledger)"), {"fields": ("storage_bytes_used", "render_seconds_month", "render_month_key")}),
        (_("Webhooks"), {"fields": ("webhook_url",)}),
    )

    def get_queryset(self, request):
        return teams_with_usage(super().get_queryset(request))

    @admin.display(description=_("members"), ordering="member_count")
    def member_count(self, obj):
        return obj.member_count

    @admin.display(description=_("storage"), ordering="storage_fraction")
    def storage_column(self, obj):
        return meter_html(format_bytes(obj.storage_bytes_used), format_bytes(obj.plan("storage_bytes_limit")), obj.storage_fraction)

    @admin.display(description=_("minutes this month"), ordering="minutes_fraction")
    def minutes_column(self, obj):
        return meter_html(f"{obj.minutes_used:.1f}", f"{float(obj.plan('render_minutes_limit')):.0f}", obj.minutes_fraction)

    # --- actions ---------------------------------------------------------------------
    def _set_suspended(self, request, queryset, suspended: bool):
        for team in queryset:
            team_suspend_set(team=team, suspended=suspended)
            self.log_change(request, team, "Suspended" if suspended else "Resumed")
        n = queryset.count()
        if suspended:
            msg = ngettext("%(n)d team suspended.", "%(n)d teams suspended.", n)
        else:
            msg = ngettext("%(n)d team resumed.", "%(n)d teams resumed.", n)
        self.message_user(request, msg % {"n": n}, messages.SUCCESS)

    @admin.action(description=_("Suspend (no new renders; downloads still work)"), permissions=["change"])
    def suspend_teams(self, request, queryset):
        self._set_suspended(request, queryset, True)

    @admin.action(description=_("Resume"), permissions=["change"])
    def resume_teams(self, request, queryset):
        self._set_suspended(request, queryset, False)

    @admin.action(description=_("Grant extra render minutes…"), permissions=["change"])
    def grant_minutes(self, request, queryset):
        form = GrantMinutesForm(request.POST if "apply" in request.POST else None)
        if "apply" in request.POST and form.is_valid():
            minutes, note = form.cleaned_data["minutes"], form.cleaned_data["note"]
            with transaction.atomic():
                for team in queryset:
                    render_minutes_grant(team=team, minutes=minutes, note=note, by=request.user)
                    self.log_change(request, team, f"Granted {minutes:g} render minutes: {note}")
            self.message_user(request, _("Granted %(m)s minutes to %(n)d team(s).") % {"m": f"{minutes:g}", "n": queryset.count()},
                              messages.SUCCESS)
            return None
        return TemplateResponse(request, "admin/accounts/team/grant_minutes.html", {
            **self.admin_site.each_context(request),
            "title": _("Grant extra render minutes"),
            "opts": self.model._meta,
            "teams": queryset,
            "form": form,
            "action_checkbox_name": ACTION_CHECKBOX_NAME,
        })


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    form = MembershipAdminForm
    list_display = ("user", "team", "role", "created")
    list_filter = ("role",)
    search_fields = ("user__email", "team__name", "team__slug")
    autocomplete_fields = ("user", "team")
    list_select_related = ("user", "team")

    def has_delete_permission(self, request, obj=None):
        if obj is not None and membership_is_last_owner(membership=obj):
            return False  # the last owner leaves only with the team
        return super().has_delete_permission(request, obj)

    def get_deleted_objects(self, objs, request):
        # A last owner shows up as "protected": Django then refuses the whole deletion, from the
        # change page and from the bulk action alike, and logs nothing.
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        last = [_("%(m)s (the team's last owner)") % {"m": m} for m in objs if membership_is_last_owner(membership=m)]
        return deleted, counts, perms_needed, [*protected, *last]


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    list_display = ("email", "team", "role", "invited_by", "created", "expires_at", "state")
    list_filter = ("role",)
    search_fields = ("email", "team__name")
    list_select_related = ("team", "invited_by")
    # The token is only ever stored hashed; the hash is not shown either.
    exclude = ("token_hash",)
    readonly_fields = ("team", "email", "invited_by", "created", "accepted_at", "accepted_by")
    actions = ["revoke"]

    def has_add_permission(self, request):
        return False  # invitations are sent from the team page (the email carries the token)

    @admin.display(description=_("state"))
    def state(self, obj):
        if obj.accepted_at:
            return _("accepted")
        if obj.revoked_at:
            return _("revoked")
        return _("expired") if obj.is_expired else _("pending")

    @admin.action(description=_("Revoke"), permissions=["change"])
    def revoke(self, request, queryset):
        for inv in queryset.filter(accepted_at__isnull=True, revoked_at__isnull=True):
            revoke_once(inv)
            self.log_change(request, inv, "Revoked")


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ("name", "team", "prefix_shown", "created_by", "created", "last_used_at", "revoked_at", "revoked_reason")
    list_filter = ("revoked_at", "revoked_reason")
    search_fields = ("name", "prefix", "team__name")
    list_select_related = ("team", "created_by")
    # Keys are shown once at creation and stored hashed: no key, no hash here.
    exclude = ("key_hash",)
    readonly_fields = ("team", "name", "prefix", "created_by", "created", "last_used_at", "revoked_at", "revoked_reason")
    actions = ["revoke"]

    def has_add_permission(self, request):
        return False  # created by the team (or `manage.py create_api_key`), which shows it once

    @admin.display(description=_("key"))
    def prefix_shown(self, obj):
        return f"{obj.prefix}…"

    @admin.action(description=_("Revoke"), permissions=["change"])
    def revoke(self, request, queryset):
        revoke_each(self, request, queryset, lambda key: apikey_revoke(key=key))


@admin.register(UsageEntry)
class UsageEntryAdmin(admin.ModelAdmin):
    """The ledger is append-only: read here, written only by accounts.quotas."""

    list_display = ("created", "team", "kind", "amount_shown", "reason", "job", "render", "note")
    list_filter = ("kind", "reason", "created")
    search_fields = ("team__name", "team__slug", "note", "reason")
    list_select_related = ("team", "job", "render")
    date_hierarchy = "created"

    @admin.display(description=_("amount"), ordering="amount")
    def amount_shown(self, obj):
        if obj.kind == UsageEntry.STORAGE:
            return format_bytes(obj.amount)
        return f"{obj.amount / 60:+.2f} min"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
