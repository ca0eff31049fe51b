"""English and Simplified Chinese: the language switcher and the compiled catalogue."""
from django.urls import reverse


def test_language_switch_renders_chinese(db, client):
    html = client.get(reverse("account_login")).content.decode()
    assert "Skip to content" in html and 'lang="en"' in html
    r = client.post(reverse("set_language"), {"language": "zh-hans", "next": reverse("account_login")})
    assert r.status_code == 302 and r["Location"] == reverse("account_login")
    html = client.get(reverse("account_login")).content.decode()
    assert 'lang="zh-hans"' in html
    assert "跳到正文" in html        # our catalogue (base.html)
    assert "登录" in html            # allauth's catalogue (the sign-in page itself)
    assert "Skip to content" not in html


def test_team_page_in_chinese(cast, client):
    client.force_login(cast.alice)
    html = client.get(reverse("team_settings"), HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert "成员" in html and "邀请" in html
    assert "所有者" in html  # the role label, from accounts.roles


def _po_entries(text: str):
    """(msgctxt, msgid, [msgstr...], flags) for each live entry of a .po file."""
    import ast

    entries = []
    for block in text.split("\n\n"):
        lines = [ln for ln in block.strip().splitlines() if not ln.startswith("#~")]
        flags = " ".join(ln for ln in lines if ln.startswith("#,"))
        fields, current = {}, None
        for ln in lines:
            if ln.startswith("#"):
                continue
            if ln.startswith('"'):
                fields[current] += ast.literal_eval(ln)
            else:
                current, _, rest = ln.partition(" ")
                fields[current] = ast.literal_eval(rest)
        if fields.get("msgid"):
            strs = [v for k, v in fields.items() if k.startswith("msgstr")]
            entries.append((fields.get("msgctxt"), fields["msgid"], strs, flags))
    return entries


def test_every_catalogue_entry_is_translated_and_compiled():
    """No empty or fuzzy entry in the zh_Hans catalogue, and django.mo matches django.po.

    When this fails after makemessages: translate the new entries, then compilemessages
    (docs/I18N.md)."""
    import gettext
    from pathlib import Path

    po = Path(__file__).resolve().parents[2] / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po"
    entries = _po_entries(po.read_text(encoding="utf-8"))
    assert len(entries) > 100
    untranslated = [e[1] for e in entries if not all(e[2])]
    fuzzy = [e[1] for e in entries if "fuzzy" in e[3]]
    assert not untranslated, untranslated[:5]
    assert not fuzzy, fuzzy[:5]
    with open(po.with_suffix(".mo"), "rb") as f:
        mo = gettext.GNUTranslations(f)
    stale = [msgid for ctxt, msgid, strs, _ in entries if len(strs) == 1 and
             (mo.pgettext(ctxt, msgid) if ctxt else mo.gettext(msgid)) != strs[0]]
    assert not stale, f"django.mo is out of date (compilemessages): {stale[:5]}"
