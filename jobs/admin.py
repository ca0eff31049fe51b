"""Admin for the jobs app. State changes go through jobs.services (the admin is one more door);
every action is logged with `log_change`."""
from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from accounts.admin import TeamAdmin as AccountsTeamAdmin
from accounts.admin import meter_html, revoke_each
from accounts.models import Team
from accounts.quotas import QuotaExceeded, format_bytes
from accounts.usage import USAGE_FRACTIONS
from jobs.models import Job, Render, ShareLink, Template, WebhookDelivery
from jobs.usage import teams_with_in_flight

# --- Teams: accounts' console plus what needs renders ----------------------------------------

admin.site.unregister(Team)


@admin.register(Team)
class TeamAdmin(AccountsTeamAdmin):
    """accounts.admin.TeamAdmin with the renders in flight (jobs.selectors.in_flight_q) against
    the plan's concurrency, and the purge of expired outputs (jobs.maintenance)."""

    list_display = ("name", "slug", "member_count", "storage_column", "minutes_column", "in_flight_column",
                    "suspended", "created")
    actions = ["suspend_teams", "resume_teams", "purge_expired_outputs", "grant_minutes"]
    usage_fractions = (*USAGE_FRACTIONS, "in_flight_fraction")

    def get_queryset(self, request):
        return teams_with_in_flight(super().get_queryset(request))

    @admin.display(description=_("renders running"), ordering="in_flight")
    def in_flight_column(self, obj):
        return meter_html(str(obj.in_flight), str(obj.plan("max_concurrent_renders")), obj.in_flight_fraction)

    @admin.action(description=_("Purge expired outputs now"), permissions=["change"])
    def purge_expired_outputs(self, request, queryset):
        from jobs.maintenance import outputs_expired_purge

        total, freed = 0, 0
        for team in queryset:
            report = outputs_expired_purge(team=team)
            total += len(report.expired_renders)
            freed += report.freed_bytes
            self.log_change(request, team, f"Purged {len(report.expired_renders)} expired outputs ({report.freed_bytes} bytes)")
        self.message_user(request, _("%(n)d expired outputs deleted, %(size)s freed.") % {"n": total, "size": format_bytes(freed)},
                          messages.SUCCESS)



@admin.register(Template)
class TemplateAdmin(admin.ModelAdmin):
    list_display = ("name", "team", "duration", "resolution", "size", "prep_status", "created")
    list_filter = ("prep_status", "team")
    search_fields = ("name", "original_filename", "team__name", "id")
    list_select_related = ("team",)
    readonly_fields = [f.name for f in Template._meta.fields if f.name not in ("name", "tags")]

    @admin.display(description=_("size"), ordering="size_bytes")
    def size(self, obj):
        return format_bytes(obj.size_bytes)

    @admin.display(description=_("resolution"))
    def resolution(self, obj):
        return f"{obj.width}×{obj.height}"

    def has_add_permission(self, request):
        return False  # uploads go through the portal/API (probe, quota, preparation)


class RenderInline(admin.TabularInline):
    model = Render
    extra = 0
    can_delete = False
    fields = ("template_name", "status", "progress", "attempts", "error_message", "finished", "expires_at")
    readonly_fields = fields
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ("__str__", "team", "status", "priority", "render_count", "audio_duration", "created_by", "created")
    list_filter = ("status", "priority", "team")
    search_fields = ("title", "id", "team__name", "audio_filename", "created_by__email")
    list_select_related = ("team", "created_by")
    date_hierarchy = "created"
    inlines = [RenderInline]
    readonly_fields = [f.name for f in Job._meta.fields if f.name != "title"]

    @admin.display(description=_("renders"))
    def render_count(self, obj):
        return obj.renders.count()

    def has_add_permission(self, request):
        return False


@admin.register(Render)
class RenderAdmin(admin.ModelAdmin):
    list_display = ("template_name", "job", "team", "status", "attempts", "error_code", "short_error",
                    "worker_name", "finished", "expires_at")
    list_filter = ("status", "error_code", "queue_name", "team")
    search_fields = ("id", "template_name", "error_message", "job__title", "team__name", "worker_name")
    list_select_related = ("job", "team")
    readonly_fields = [f.name for f in Render._meta.fields]
    actions = ["retry_renders"]

    @admin.display(description=_("error"))
    def short_error(self, obj):
        return (obj.error_message[:80] + "…") if len(obj.error_message) > 80 else obj.error_message

    def has_add_permission(self, request):
        return False

    @admin.action(description=_("Retry (failed or cancelled renders)"), permissions=["change"])
    def retry_renders(self, request, queryset):
        from jobs.services import render_retry

        done, refused = 0, []
        for render in queryset.select_related("job", "team"):
            try:
                # user=None: the operator acts for the team (no role check), quotas still apply.
                render_retry(render=render, user=None)
            except (ValidationError, QuotaExceeded) as exc:
                refused.append(f"{render.template_name}: {'; '.join(getattr(exc, 'messages', [str(exc)]))}")
                continue
            done += 1
            self.log_change(request, render, "Retried from the admin")
        if done:
            self.message_user(request, _("%(n)d render(s) queued again.") % {"n": done}, messages.SUCCESS)
        for line in refused:
            self.message_user(request, line, messages.WARNING)


@admin.register(ShareLink)
class ShareLinkAdmin(admin.ModelAdmin):
    list_display = ("token_prefix", "team", "job", "render", "created_by", "created", "expires_at", "revoked_at", "views")
    list_filter = ("team",)
    search_fields = ("token_prefix", "team__name")
    list_select_related = ("team", "job", "render", "created_by")
    # Tokens and passwords are stored hashed; neither is shown.
    exclude = ("token_hash", "password_hash")
    readonly_fields = ("team", "job", "render", "token_prefix", "created_by", "created", "views", "revoked_at")
    actions = ["revoke"]

    def has_add_permission(self, request):
        return False

    @admin.action(description=_("Revoke"), permissions=["change"])
    def revoke(self, request, queryset):
        from jobs.sharing import sharelink_revoke

        revoke_each(self, request, queryset, lambda link: sharelink_revoke(link=link))


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ("event", "team", "job", "url", "status", "attempt_count", "created", "delivered_at")
    list_filter = ("status", "event", "team")
    search_fields = ("url", "event", "team__name", "id")
    list_select_related = ("team", "job")
    readonly_fields = [f.name for f in WebhookDelivery._meta.fields]

    @admin.display(description=_("attempts"))
    def attempt_count(self, obj):
        return len(obj.attempts or [])

    def has_add_permission(self, request):
        return False
