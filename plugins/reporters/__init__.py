"""Built-in reporters (each its own entry point).

A reporter turns a results folder into one file; see
:func:`polymodal.report.render`. This module must stay light: the
implementations (the HTML one imports matplotlib) load only when used.
"""

from polymodal import component, components

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
#: How the built-in axes' artifacts appear in the reports (the reporters themselves know no artifact kind).
report_sections = components(
    *(("report_sections", name, f"polymodal_plugins.reporters.sections:{name}", {"description": description})
      for name, description in (
          ("retrieval", "artifact kind 'retrieval_example': query and ranked results, hits marked."),
          ("captioning", "artifact kind 'caption_example': image, generated caption, references and scores."),
          ("generation", "artifact kind 'generated_image': generated images with their prompts."),
          ("attention", "artifact kind 'attention_map': heatmaps over images and token weights."),
          ("importance", "artifact kind 'importance': modality importance chart (rows and artifacts)."),
          ("answering", "artifact kind 'answer_example': question and the model's reply."),
          ("transcription", "artifact kind 'transcript_example': reference and the model's transcript."),
      )),
)
