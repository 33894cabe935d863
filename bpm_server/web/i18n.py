"""Languages of the web UI: Chinese by default, English on request.

``?lang=en`` (or ``?lang=zh_CN``) on any page switches the language and keeps
it in the session cookie. Message catalogues come in two Babel domains:
``messages`` (bpm_server/translations) and ``pages`` (bpm_server/web/translations);
``make install`` compiles their .po files to .mo.
"""
from __future__ import annotations

import io
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_datetime, format_timedelta
from babel.support import NullTranslations, Translations
from flask import Flask, has_request_context, request, session, url_for
from flask_babel import Babel, Domain, get_locale, gettext
from werkzeug.routing import BuildError
from werkzeug.utils import cached_property

from bpm_server.extensions import deployment

PACKAGE_DIR = Path(__file__).resolve().parent.parent
# Order matters: Flask-Babel pairs the n-th directory with the n-th domain.
TRANSLATION_DIRS = (PACKAGE_DIR / "translations", PACKAGE_DIR / "web" / "translations")
DOMAINS = ("messages", "pages")
LANGUAGES = {"zh_CN": "中文", "en": "English"}
DEFAULT_LOCALE = "zh_CN"
TIMEZONE = "Asia/Shanghai"


class _CatalogDomain(Domain):
    """Flask-Babel looks catalogues up by the parsed locale ("zh_Hans_CN"), but
    ours live under the tag people write ("zh_CN"): load them by that tag."""

    def get_translations(self) -> Translations:
        locale = current_language()
        key = (locale, tuple(self.domain))
        cached = self.cache.get(key)
        if cached is not None:
            return cached
        translations = Translations()
        # Merged last-to-first, so on a msgid both domains translate, the
        # first domain ("messages", the shared layout's words) wins.
        pairs = list(enumerate(self.translation_directories))
        for index, directory in reversed(pairs):
            domain = self.domain[0] if len(self.domain) == 1 else self.domain[index]
            catalog = _load_catalog(Path(directory), locale, domain)
            # Babel types merge() for its own Translations; it takes any gettext catalogue.
            translations.merge(catalog)  # type: ignore[arg-type]
            if hasattr(catalog, "plural"):
                translations.plural = catalog.plural
        self.cache[key] = translations
        return translations


def _load_catalog(directory: Path, locale: str, domain: str) -> Translations | NullTranslations:
    """The compiled catalogue; failing that (an install that skipped ``make
    translations``, e.g. a plain ``pip install .``), compiled from the .po in memory."""
    catalog = Translations.load(str(directory), [locale], domain)
    po = directory / locale / "LC_MESSAGES" / f"{domain}.po"
    if isinstance(catalog, Translations) or not po.is_file():
        return catalog
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    with po.open("rb") as source:
        messages = read_po(source, locale=locale, domain=domain)
    compiled = io.BytesIO()
    write_mo(compiled, messages, use_fuzzy=True)
    compiled.seek(0)
    return Translations(compiled, domain=domain)


class _Babel(Babel):
    @cached_property
    def domain_instance(self) -> Domain:
        return _CatalogDomain(domain=self.domain)


def select_locale() -> str:
    if not has_request_context():  # a CLI sync, a job: no one asked for a language
        return DEFAULT_LOCALE
    wanted = request.args.get("lang")
    if wanted in LANGUAGES:
        return wanted
    stored = session.get("lang")
    return stored if stored in LANGUAGES else DEFAULT_LOCALE


def _remember_language() -> None:
    wanted = request.args.get("lang")
    if wanted in LANGUAGES and session.get("lang") != wanted:
        session["lang"] = wanted


def lang_url(code: str) -> str:
    """The current page in another language (other query arguments kept)."""
    args: dict[str, Any] = request.args.to_dict(flat=False)
    args["lang"] = [code]
    endpoint = request.endpoint or "session.login"
    try:
        return url_for(endpoint, **(request.view_args or {}), **args)
    except BuildError:  # an endpoint that needs arguments we do not have: fall back to the query string only
        return f"?lang={code}"


def current_language() -> str:
    """The page's language as written in LANGUAGES ("zh_CN" or "en")."""
    locale = get_locale()
    if locale is None:
        return DEFAULT_LOCALE
    return "en" if locale.language == "en" else DEFAULT_LOCALE


def _as_datetime(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    return value


def datetime_filter(value: Any, fmt: str = "medium") -> str:
    """A moment in Shanghai time, formatted for the page's language."""
    moment = _as_datetime(value)
    if moment is None:
        return ""
    if isinstance(moment, date) and not isinstance(moment, datetime):
        return format_date(moment, format=fmt, locale=current_language())
    return format_datetime(moment, format=fmt, tzinfo=ZoneInfo(TIMEZONE), locale=current_language())


def date_filter(value: Any, fmt: str = "medium") -> str:
    moment = _as_datetime(value)
    if moment is None:
        return ""
    if isinstance(moment, datetime):
        day = moment.astimezone(ZoneInfo(TIMEZONE)).date() if moment.tzinfo else moment.date()
        return format_date(day, format=fmt, locale=current_language())
    return format_date(moment, format=fmt, locale=current_language())


def duration_filter(value: Any) -> str:
    """A wall-clock duration (seconds or timedelta), e.g. "3 hours" / "3小时"."""
    if value is None:
        return ""
    delta = value if isinstance(value, timedelta) else timedelta(seconds=float(value))
    return format_timedelta(abs(delta), threshold=1.1, locale=current_language())


def working_duration_filter(value: Any) -> str:
    """Working time in seconds as working days, hours and minutes of the business calendar."""
    if value is None:
        return ""
    seconds = abs(int(value.total_seconds() if isinstance(value, timedelta) else float(value)))
    days, rest = divmod(seconds, deployment().calendar.minutes_per_day * 60)  # a working day of this calendar
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    parts = []
    if days:
        parts.append(gettext("%(n)d working days", n=days) if days != 1 else gettext("1 working day"))
    if hours:
        parts.append(gettext("%(n)d h", n=hours))
    if minutes and not days:
        parts.append(gettext("%(n)d min", n=minutes))
    return " ".join(parts) if parts else gettext("%(n)d min", n=0)


def init_i18n(app: Flask) -> None:
    app.config.setdefault("BABEL_DEFAULT_LOCALE", DEFAULT_LOCALE)
    app.config.setdefault("BABEL_DEFAULT_TIMEZONE", TIMEZONE)
    app.config.setdefault("BABEL_DOMAIN", ";".join(DOMAINS))
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", ";".join(str(d) for d in TRANSLATION_DIRS))
    _Babel(app, locale_selector=select_locale)
    app.before_request(_remember_language)
    app.jinja_env.filters.update(datetime=datetime_filter, date=date_filter, duration=duration_filter,
                                 working_duration=working_duration_filter)
    app.jinja_env.globals.update(lang_url=lang_url, LANGUAGES=LANGUAGES, current_language=current_language)
