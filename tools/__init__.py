"""Build tooling of the book (run as ``python -m tools.build_book``)."""
