"""README's test command is the one `.ci/run` runs (CI must run what the README tells users)."""
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_ci_runs_the_readme_test_command():
  readme = (ROOT / "README.md").read_text()
  block = re.search(r"<!-- test-command -->\s*```bash\n(.*?)\n```", readme, re.S)
  assert block, "README.md lost its <!-- test-command --> block"
  ci = (ROOT / ".ci" / "run").read_text()
  between = re.search(r"# --- begin README test command.*?\n(.*?)\n# --- end README test command",
                      ci, re.S)
  assert between, ".ci/run lost its README test command markers"
  assert between.group(1).strip() == block.group(1).strip()
