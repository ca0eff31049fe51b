from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from jobs.models import Job


class TemplateUploadForm(forms.Form):
    file = forms.FileField(label=_("Presenter video"), help_text=_("MP4, MOV, MKV, WebM or AVI; one person facing the camera."),
                           widget=forms.ClearableFileInput(attrs={"accept": "video/*,.mkv,.avi"}))
    name = forms.CharField(label=_("Name"), max_length=200, required=False, help_text=_("Defaults to the file name."))
    tags = forms.CharField(label=_("Tags"), max_length=400, required=False, help_text=_("Comma-separated, e.g. studio, female, english"))


class TemplateEditForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=200)
    tags = forms.CharField(label=_("Tags"), max_length=400, required=False, help_text=_("Comma-separated"))


class JobCreateForm(forms.Form):
    title = forms.CharField(label=_("Title"), max_length=200, required=False, help_text=_("Optional; shown in the job list."))
    audio = forms.FileField(label=_("Audio"), help_text=_("WAV, MP3, M4A, AAC, FLAC, OGG or Opus with the speech to lip-sync."),
                            required=False,  # or the sample voice; clean() insists on one of the two
                            widget=forms.ClearableFileInput(attrs={"accept": "audio/*,.wav,.mp3,.m4a,.flac,.ogg,.opus"}))
    sample_voice = forms.BooleanField(label=_("Use the sample voice recording instead (9.6 s of speech)"), required=False)
    templates = forms.MultipleChoiceField(label=_("Templates"), widget=forms.CheckboxSelectMultiple,
                                          error_messages={"required": _("Choose at least one template.")})
    priority = forms.ChoiceField(label=_("Priority"), initial="default")

    def __init__(self, *args, templates=(), priorities=("default",), **kwargs):
        super().__init__(*args, **kwargs)
        self.template_objects = list(templates)
        self.fields["templates"].choices = [(str(t.pk), t.name) for t in self.template_objects]
        labels = dict(Job.Priority.choices)
        self.fields["priority"].choices = [(p, labels[p]) for p in priorities]
        if "default" not in priorities:
            self.fields["priority"].initial = priorities[-1]

    def clean(self):
        data = super().clean()
        if not data.get("audio") and not data.get("sample_voice"):
            self.add_error("audio", _("Choose an audio file (or the sample voice)."))
        return data


class GalleryFilterForm(forms.Form):
    q = forms.CharField(label=_("Search"), required=False, max_length=100)
    template = forms.ChoiceField(label=_("Template"), required=False)
    job = forms.ChoiceField(label=_("Batch"), required=False)
    since = forms.DateField(label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(label=_("To"), required=False, widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args, templates=(), jobs=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["template"].choices = [("", _("All templates"))] + [(str(t.pk), t.name) for t in templates]
        self.fields["job"].choices = [("", _("All batches"))] + [(str(j.pk), str(j)) for j in jobs]


class JobFilterForm(forms.Form):
    status = forms.ChoiceField(label=_("Status"), required=False, choices=[("", _("All"))] + list(Job.Status.choices))
    q = forms.CharField(label=_("Search"), required=False, max_length=100)
