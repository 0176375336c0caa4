"""Sphinx extension: cell outputs that a PDF reader can read whole.

d2lbook 1.0.3 sets every code block of the PDF in ``\\small`` monospace,
about 74 characters to a line. Output lines that are longer, such as a
table of trials or a line of the tuner's log, are wrapped by Sphinx's
``sphinxVerbatim``, which may break a line after any ``.``: a number
like ``22.5663`` then reads ``22.`` at the end of one line and ``5663``
at the start of the next, and the columns of a table fall apart.

This extension (listed in ``config.ini`` under ``sphinx_extensions``)
adds two lines to the LaTeX preamble:

* output cells (d2lbook starts each with ``\\diilbookstyleoutputcell``)
  are set in ``\\footnotesize``, about 83 characters to a line, which
  the chapter's tables fit; input cells stay ``\\small``;
* a verbatim line may still break after ``,``, ``;``, ``?``, ``!`` and
  ``/`` and at spaces, but no longer after ``.``, so no number is split.

``tests/test_book.py`` checks that the numbers of every output line are
in the PDF, and those of every table row on one line of it.
"""

PREAMBLE = r'''
% tools/sphinx_pdf.py: smaller output cells, no line break after a '.'
\let\hpoOutputCellStyle\diilbookstyleoutputcell
\def\diilbookstyleoutputcell{\hpoOutputCellStyle\fvset{fontsize=\footnotesize}}
\let\hpoInputCellStyle\diilbookstyleinputcell
\def\diilbookstyleinputcell{\hpoInputCellStyle\fvset{fontsize=\small}}
\renewcommand*\sphinxbreaksafteractivelist{\do\,\do\;\do\?\do\!\do\/}
'''


def _add_preamble(app, config):
    elements = dict(config.latex_elements or {})
    elements['preamble'] = elements.get('preamble', '') + PREAMBLE
    config.latex_elements = elements


def setup(app):
    app.connect('config-inited', _add_preamble)
    return {'parallel_read_safe': True, 'parallel_write_safe': True}
