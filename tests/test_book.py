"""The built book, looked at as a reader would, offline.

One HTML build (``python -m tools.build_book --html-only`` with
``HPO_BUDGET=test``, so the notebooks' experiments are tiny; the fixture is
in ``conftest.py``, shared with ``test_notebooks.py``) serves all HTML
checks. Every page is opened from disk in headless Chromium: the maths must
be typeset by the local MathJax, every image must load, and no request may
leave ``file://``. Screenshots go to ``_test_book/_build/screenshots/``.

The build is made in ``_test_book/``, a copy of the sources of its own
(``conftest.sync_test_book``): the reader's ``_build/`` stays as it was.

Marks: ``book`` (the tests that build) and ``pdf`` (the PDF build)::

    .venv/bin/python -m pytest tests/test_book.py -m "not pdf"
    .venv/bin/python -m pytest -m "not book"     # everything but the book
"""
import configparser
import re
import subprocess
from pathlib import Path

import nbformat
import pytest

from conftest import BUILD, ROOT
from browser import inspect_page

SHOTS = BUILD / 'screenshots'

book = pytest.mark.book  # the tests that need a build

# Every page of the book: its Markdown source and the HTML built from it.
SOURCES = [ROOT / 'index.md', *sorted(ROOT.glob('chapter_*/*.md'))]
PAGES = [src.relative_to(ROOT).with_suffix('') for src in SOURCES]

# What a page may ask the browser for: files on disk, inline data.
LOCAL_SCHEMES = ('file:', 'data:', 'blob:', 'about:')


def test_theme_script_made_offline():
    """d2lbook's generated d2l.js loses every external URL (no build)."""
    from d2lbook import sphinx_template as t

    from tools.sphinx_offline import external_urls, make_offline
    js = (t.shorten_sec_num + t.replace_qr + t.copybutton_js
          + t.discourse_js + t.tabbar_js
          + t.google_tracker.replace('GOOGLE_ANALYTICS_TRACKING_ID', ''))
    assert external_urls(js)  # the problem is real
    fixed = make_offline(js)
    assert external_urls(fixed) == []
    assert '_static/copy-button.svg' in fixed
    assert 'window.ga = function' in fixed
    assert (ROOT / 'tools' / 'static' / 'copy-button.svg').exists()


def test_config_is_strict_and_offline():
    config = configparser.ConfigParser()
    config.read(ROOT / 'config.ini')
    assert config['build']['warning_is_error'] == 'True'
    extensions = config['build']['sphinx_extensions'].split()
    assert 'sphinx-mathjax-offline' in extensions
    assert 'tools.sphinx_offline' in extensions


def test_browser_check_sees_what_a_page_does(tmp_path):
    """The browser check, offline, on a page with every kind of problem."""
    page = tmp_path / 'page.html'
    page.write_text(
        '<html><body><h1>$x$ and **y**</h1><img src="missing.png">'
        '<img src="https://example.invalid/remote.png">'
        '<script>console.error("logged"); throw new Error("thrown")'
        '</script></body></html>')
    shot = tmp_path / 'shot.png'
    report = inspect_page(page, shot)
    assert page.as_uri() in report['requests']
    assert 'https://example.invalid/remote.png' in report['requests']
    failed = dict(report['failed'])
    assert failed[(tmp_path / 'missing.png').as_uri()].startswith('net::')
    assert any('thrown' in e for e in report['exceptions'])
    assert any('logged' in e for e in report['console_errors'])
    assert report['raw_markup'] == ['**', '$']
    assert [im['natural_width'] for im in report['images']] == [0, 0]
    assert shot.exists()


@book
def test_no_sphinx_warnings(html_build):
    assert re.search(r'^build succeeded\.$', html_build, re.M), \
        html_build[-3000:]
    warnings = re.findall(r'^.*(?:WARNING: |Warning, treated as error).*$',
                          html_build, re.M)
    assert not warnings
    assert 'HPO_BUDGET=test' in html_build


@book
def test_evaluated_notebooks_exist(html_build):
    for page in PAGES:
        notebook = BUILD / 'eval' / page.with_suffix('.ipynb')
        assert notebook.exists(), notebook


def stray_files(eval_dir):
    """What lies in ``eval_dir`` besides the evaluated notebooks, the
    resources ``config.ini`` lists, the build's budget stamp and the
    simulations sh-async caches (``sim_*.csv``): Syne Tune's ``std.out``
    or Ray's ``ray_results/``, say."""
    config = configparser.ConfigParser()
    config.read(ROOT / 'config.ini')
    expected = {page.with_suffix('.ipynb') for page in PAGES} | {
        path.relative_to(ROOT) for pattern in
        config['build']['resources'].split() for path in ROOT.glob(pattern)}
    expected |= {parent for path in expected for parent in path.parents}
    return sorted(str(p) for p in (
        path.relative_to(eval_dir) for path in eval_dir.rglob('*'))
        if p not in expected and p.name != '.hpo_budget'
        and not re.fullmatch(r'sim_\w+\.csv', p.name)
        and '.ipynb_checkpoints' not in p.parts)


@book
def test_nothing_stray_beside_the_evaluated_notebooks(html_build):
    assert stray_files(BUILD / 'eval') == []


@book
def test_references_are_listed(html_build):
    html = (BUILD / 'html' / 'chapter_references' /
            'zreferences.html').read_text(encoding='utf-8')
    for text in ['Random search for hyper-parameter optimization',
                 'Syne Tune']:
        assert text in html


@book
@pytest.mark.parametrize('page', PAGES, ids=[str(p) for p in PAGES])
def test_page_in_browser(html_build, page):
    html_file = BUILD / 'html' / page.with_suffix('.html')
    assert html_file.exists(), html_file
    shot = SHOTS / (str(page).replace('/', '-') + '.png')
    shot.unlink(missing_ok=True)
    report = inspect_page(html_file, shot)
    where = f'{page} (screenshot {shot.relative_to(ROOT)})'

    external = [url for url in report['requests']
                if not url.startswith(LOCAL_SCHEMES)]
    assert not external, f'{where}: requests leave the disk: {external}'
    assert not report['failed'], f'{where}: failed loads {report["failed"]}'
    assert not report['exceptions'], f'{where}: {report["exceptions"]}'

    broken = [im['src'] for im in report['images']
              if not im['complete'] or im['natural_width'] == 0]
    assert not broken, f'{where}: images that did not load: {broken}'

    # maths: typeset by the local MathJax, nothing left as raw TeX
    assert report['math_unrendered'] == 0, where
    assert report['mjx_errors'] == 0, where
    assert not report['raw_tex'], f'{where}: raw TeX {report["raw_tex"]}'
    # prose (code excluded) shows no unconverted Markdown/d2lbook markup,
    # e.g. **`x`** (no nesting in reST) leaves ``x`` on the page
    assert not report['raw_markup'], \
        f'{where}: raw markup {report["raw_markup"]} in the text'
    if report['math_elements']:
        assert report['mjx_containers'] >= report['math_elements'], where
        assert report['mathjax_version'], where
    if page == Path('chapter_hpo/index'):
        assert report['mjx_containers'] > 0, f'{where}: no maths typeset'

    # d2l.js gives each code cell a copy button; its icon is an <img>
    # checked above, served from _static/
    if report['code_cells']:
        assert report['copy_buttons'] == report['code_cells'], where

    assert shot.exists() and not _blank_png(shot), where


def _blank_png(path):
    from PIL import Image
    with Image.open(path) as im:
        low, high = im.convert('L').getextrema()
    return high - low < 32


@book
@pytest.mark.pdf
def test_pdf_pages(pdf_build):
    pdf = BUILD / 'pdf' / 'd2l-hpo.pdf'  # [project] name in config.ini
    assert pdf.exists()
    info = subprocess.run(['pdfinfo', pdf], capture_output=True, text=True,
                          check=True).stdout
    n_pages = int(re.search(r'^Pages:\s+(\d+)', info, re.M).group(1))
    assert n_pages >= 5

    # fonts from fonts-freefont-otf, as config.ini asks
    fonts = subprocess.run(['pdffonts', pdf], capture_output=True,
                           text=True, check=True).stdout
    for font in ['FreeSerif', 'FreeSans', 'FreeMono']:
        assert font in fonts

    # no unresolved reference or citation (LaTeX prints "??")
    text = subprocess.run(['pdftotext', '-layout', pdf, '-'],
                          capture_output=True, text=True, check=True).stdout
    assert '??' not in text
    assert 'Parallel Hyperparameter Optimization' in text
    assert 'Bibliography' in text

    # every page with text renders with ink on it; the book is not empty
    out = SHOTS / 'pdf'
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob('page-*.png'):
        old.unlink()
    subprocess.run(['pdftoppm', '-r', '40', '-png', pdf, out / 'page'],
                   check=True)
    pngs = sorted(out.glob('page-*.png'))
    assert len(pngs) == n_pages
    inked = 0
    for i, png in enumerate(pngs, start=1):
        page_text = subprocess.run(
            ['pdftotext', '-f', str(i), '-l', str(i), pdf, '-'],
            capture_output=True, text=True, check=True).stdout
        blank = _blank_png(png)
        inked += not blank
        if page_text.strip():
            assert not blank, f'page {i} has text but renders blank: {png}'
    assert inked >= n_pages // 2


def shown_outputs(notebook):
    """(cell number, output) of every output the book shows, as d2lbook
    decides it (``#@hide``, ``#@hide_output``, ``#@hide_all``)."""
    hide_all = False
    cells = [c for c in nbformat.read(notebook, 4).cells
             if c.cell_type == 'code']
    for i, cell in enumerate(cells, start=1):
        src = cell.source.lower()
        hide_all = hide_all or '#@hide_all' in src
        if (hide_all or '# hide outputs' in src or '#@hide_output' in src
                or ('#@hide' in src and '#@hide_code' not in src)):
            continue
        for output in cell.get('outputs', []):
            yield i, output


def output_text(output):
    """The text the book shows for ``output``: none for a figure, whose
    text form (``<Figure size ...>``) neither HTML nor PDF shows."""
    if output.output_type == 'stream':
        return output.text
    data = output.get('data', {})
    if any(kind.startswith('image/') for kind in data):
        return ''
    return data.get('text/plain', '')


NUMBER = re.compile(r'\d+(?:\.\d+)?')
# a row of a printed table: numbers in columns two or more spaces apart
TABLE_ROW = re.compile(r'\S {2,}\S.* {2,}\S')


def numbers_pattern(line):
    """A regex for the line's numbers, in order, in whitespace-free text.

    Between two numbers it allows the line's own characters but no digit,
    plus a few more for a line-wrap mark.
    """
    squeezed = re.sub(r'\s+', '', line)
    found = list(NUMBER.finditer(squeezed))
    parts = [re.escape(found[0].group())]
    for a, b in zip(found, found[1:]):
        parts.append(r'\D{0,%d}' % (b.start() - a.end() + 8))
        parts.append(re.escape(b.group()))
    return re.compile(''.join(parts))


@book
@pytest.mark.pdf
def test_every_output_reaches_the_pdf(pdf_build):
    """d2lbook's PDF drops outputs that have an HTML form (a DataFrame as a
    cell's value): none may have one. The numbers of every text output
    line must be in the PDF, whitespace removed on both sides (so that a
    line wrapped in the PDF still matches), and those of every table row
    on one line of the PDF, so that its columns stay together."""
    text = subprocess.run(
        ['pdftotext', '-layout', BUILD / 'pdf' / 'd2l-hpo.pdf', '-'],
        capture_output=True, text=True, check=True).stdout
    pdf = re.sub(r'\s+', '', text)
    pdf_lines = [re.sub(r'\s+', '', line) for line in text.splitlines()]
    html_only, missing, wrapped, checked, rows = [], [], [], 0, 0
    for notebook in sorted((BUILD / 'eval').glob('chapter_*/*.ipynb')):
        where = notebook.relative_to(BUILD / 'eval')
        for cell, output in shown_outputs(notebook):
            if 'text/html' in output.get('data', {}):
                html_only.append(f'{where}, code cell {cell}')
                continue
            for line in output_text(output).splitlines():
                if not NUMBER.search(line):
                    continue
                checked += 1
                pattern = numbers_pattern(line)
                if not pattern.search(pdf):
                    missing.append(f'{where}, code cell {cell}: {line}')
                elif TABLE_ROW.search(line):
                    rows += 1
                    if not any(pattern.search(row) for row in pdf_lines):
                        wrapped.append(f'{where}, code cell {cell}: {line}')
    assert not html_only, ('outputs with an HTML form, which the PDF drops '
                           '(print a table as text instead):\n'
                           + '\n'.join(html_only))
    assert checked > 20 and rows > 10
    assert not missing, 'output lines not in the PDF:\n' + '\n'.join(
        missing[:20])
    assert not wrapped, ('table rows wrapped over two lines in the PDF '
                         '(too wide):\n' + '\n'.join(wrapped[:20]))
