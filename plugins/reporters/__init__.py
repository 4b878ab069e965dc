"""Built-in reporters (each its own entry point).

A reporter turns a results folder into one file; see
:func:`polymodal.report.render`. This module must stay light: the
implementations (the HTML one imports matplotlib) load only when used.
"""

from polymodal import component

json_reporter = component(
    "reporters", "json", "polymodal_plugins.reporters.json:JsonReporter",
    description="Full results, leaderboard and manifest as one versioned JSON document.",
)
markdown_reporter = component(
    "reporters", "markdown", "polymodal_plugins.reporters.markdown:MarkdownReporter",
    description="README / pull-request summary: leaderboard table (runs x axes) with the best per column marked.",
)
html_reporter = component(
    "reporters", "html", "polymodal_plugins.reporters.html:HtmlReporter",
    description="One self-contained HTML page: sortable leaderboard, charts, qualitative examples, manifest.",
)
