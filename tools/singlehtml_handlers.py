"""Sphinx extension for `make pdf`: the one-page (singlehtml) builder renders every node the
html builder renders.

Sphinx looks node handlers up by builder name first and falls back to the format ("html") only
when no extension registered any for "singlehtml"; once one has, nodes that other extensions
registered for "html" only (myst-nb's hidden code cells) are unknown to the one-page build.
"""


def _inherit_html_handlers(app):
    handlers = app.registry.translation_handlers
    single = handlers.setdefault("singlehtml", {})
    for node, visitors in handlers.get("html", {}).items():
        single.setdefault(node, visitors)


def setup(app):
    app.connect("builder-inited", _inherit_html_handlers)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
