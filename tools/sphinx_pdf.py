"""Sphinx extension: cell outputs that a PDF reader can read whole.

d2lbook 1.0.3 sets code in ``\\small`` (about 74 characters a line) and
Sphinx may wrap a longer line after any ``.``, splitting numbers. This
extension (``config.ini``) sets output cells in ``\\footnotesize`` (about
83 characters, which the chapter's tables fit) and allows breaks after
``,;?!/`` and spaces only (``tests/test_book.py`` checks the PDF).
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
