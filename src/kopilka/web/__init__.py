"""The web: the staff console (``/console``) and the members' app (``/app``), rendered on
the server from Jinja2 templates over the same services as the API, in Russian and English.

Shared here: locale and message catalogues (``i18n``), rendering with the security headers
(``rendering``), CSRF and cookies (``security``), forms (``forms``), SVG charts
(``charts``), HTML error pages (``errors``). Each face's pages live in ``console/`` and
``app/``; the templates in ``templates/``, the assets in ``static/``.
"""
