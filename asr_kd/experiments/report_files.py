"""Writes the comparison's markdown table and figure from its records."""

import os
from typing import Dict, List

from asr_kd.experiments import figure
from asr_kd.experiments import report


def write_report(records: List[Dict], results_path: str, markdown_path: str,
                 figure_path: str):
  """The markdown table and (if figure_path and records) the figure."""
  os.makedirs(os.path.dirname(markdown_path) or '.', exist_ok=True)
  with open(markdown_path, 'w') as markdown:
    markdown.write(report.markdown_report(
        records, os.path.basename(results_path)))
  if figure_path and records:
    figure.draw(records, figure_path)
