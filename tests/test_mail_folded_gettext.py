"""Mail templates' `_('literal')` translated when compiled (mail.render.FoldedGettext)
render exactly as the i18n extension's newstyle gettext renders them at run time."""

from __future__ import annotations

from gettext import NullTranslations

import pytest
from jinja2 import DictLoader, Environment, select_autoescape

from saumaton.mail.render import FoldedGettext

SOURCE = ("{{ _('Total') }}|{{ _('Click & collect') }}|{{ _('100 %%') }}|"
          "{{ _('VAT %(rate)s %%', rate=r) }}|{{ store or _('the store') }}|"
          "{{ _(\"Tom's\") ~ '!' }}|{% if _('Total') == 'Yht<>' %}same{% endif %}|"
          "{{ _ ('Total') }}|{{ x._('Total') if false else '' }}")


class Catalog(NullTranslations):
    TEXTS = {"Total": "Yht<>", "Click & collect": "Nouto & <b>", "100 %%": "sata %%",
             "VAT %(rate)s %%": "ALV %(rate)s %%", "the store": "kauppa", "Tom's": "Tomin"}

    def gettext(self, message: str) -> str:
        return self.TEXTS.get(message, message)


def env(folded: bool) -> Environment:
    e = Environment(loader=DictLoader({"t.html": SOURCE, "t.txt": SOURCE}),
                    autoescape=select_autoescape(("html",)),
                    extensions=["jinja2.ext.i18n", *([FoldedGettext] if folded else [])])
    e.install_gettext_translations(Catalog(), newstyle=True)  # type: ignore[attr-defined]
    e.extend(mail_catalog=Catalog())
    return e


@pytest.mark.parametrize("name", ["t.html", "t.txt"])
@pytest.mark.parametrize("store", [None, "S & <T>"])
def test_folded_renders_as_gettext_does(name: str, store: str | None) -> None:
    values = {"r": "25,5 <x>", "store": store, "x": None}
    plain = env(False).get_template(name).render(values)
    folded = env(True).get_template(name).render(values)
    assert folded == plain
    assert ("Nouto & <b>" in folded) and ("sata %" in folded) and ("same" in folded)
