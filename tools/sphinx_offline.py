"""Sphinx extension: make d2lbook's HTML work without a network.

d2lbook 1.0.3's ``_static/d2l.js`` loads the copy button's icon and an
analytics script from external hosts. Before Sphinx copies it, this
extension (``config.ini``) serves the icon from ``_static`` (shipped in
``tools/static``) and replaces the loader by a local no-op ``ga``; an
external URL left after a d2lbook upgrade is a warning, which fails the
build under ``warning_is_error``.
"""
import re
from pathlib import Path

from sphinx.util import logging

logger = logging.getLogger(__name__)
STATIC_DIR = Path(__file__).resolve().parent / 'static'
ICON_PATTERN = re.compile(r'https?://[^"\'\s]*/copy-button\.svg')
# inside a JS template literal; the root URL from Sphinx's options
LOCAL_ICON = '${DOCUMENTATION_OPTIONS.URL_ROOT}_static/copy-button.svg'
ANALYTICS_PATTERN = re.compile(
    r"\(function\(i,s,o,g,r,a,m\)\{.*?\}\)\(window,document,'script',"
    r"'[^']*','ga'\);", re.DOTALL)
NO_ANALYTICS = """\
window.ga = function () {  // offline: no analytics; a link's callback runs
    var last = arguments[arguments.length - 1];
    if (last && typeof last.hitCallback === 'function') last.hitCallback();
};"""
EXTERNAL_URL = re.compile(r'(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}/',
                          re.IGNORECASE)


def make_offline(js):
    """Return d2lbook's ``d2l.js`` source without its external requests."""
    js = ICON_PATTERN.sub(lambda m: LOCAL_ICON, js)
    return ANALYTICS_PATTERN.sub(lambda m: NO_ANALYTICS, js)


def external_urls(js):
    """External URLs left in ``js`` (comments included, to be safe)."""
    return EXTERNAL_URL.findall(js)


def _patch_d2l_js(app):
    if app.builder.format != 'html':
        return
    path = Path(app.confdir) / '_static' / 'd2l.js'
    if not path.exists():
        logger.warning('sphinx_offline: %s not found; d2lbook has changed?',
                       path)
        return
    js = path.read_text(encoding='utf-8')
    fixed = make_offline(js)
    if fixed != js:
        path.write_text(fixed, encoding='utf-8')
    left = external_urls(fixed)
    if left:
        logger.warning('sphinx_offline: external URLs left in %s: %s',
                       path, ', '.join(sorted(set(left))))


def _add_static_dir(app, config):
    config.html_static_path.append(str(STATIC_DIR))  # to _static/


def setup(app):
    app.connect('config-inited', _add_static_dir)
    app.connect('builder-inited', _patch_d2l_js)
    # sphinx-mathjax-offline 0.0.2 (loaded before this) only adds static
    # files but does not say it is parallel-safe: Sphinx would warn
    mathjax = app.extensions.get('sphinx-mathjax-offline')
    if mathjax is not None and mathjax.parallel_read_safe is None:
        mathjax.parallel_read_safe = True
    return {'parallel_read_safe': True, 'parallel_write_safe': True}
