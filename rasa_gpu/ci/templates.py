"""`rasa-gpu ci --init github|gitlab`: a CI job that runs `rasa-gpu ci` on a GPU runner for every pull (merge)
request and on the default branch, keeps the report as an artifact, posts or updates one comment with it, and keeps
the default branch's report as the next request's baseline. Both jobs run the same script (CI_SCRIPT), the one the
tests run. Pure rendering; every value is quoted for the file and the shell it lands in.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from .. import __version__
from ..errors import SettingsError
from .report import COMMENT_MARKER

KINDS = ("github", "gitlab")
#: Where each template is written, relative to the repository root.
PATHS = {"github": ".github/workflows/rasa-gpu-ci.yml", "gitlab": ".gitlab-ci.yml"}
#: The report's place in the job's workspace, and the baseline the default branch leaves for the next request.
REPORT = "rasa-gpu-report/report.md"
BASELINE = ".rasa-gpu-baseline/report.json"

#: The job's one step: `rasa-gpu ci` with the default branch's report as baseline when there is one. The values come
#: from the environment (RASA_GPU_BOT, RASA_GPU_REPORT, RASA_GPU_BASELINE), never spliced into the script.
CI_SCRIPT = """set -euo pipefail
baseline=()
if [ -f "$RASA_GPU_BASELINE" ]; then baseline=(--baseline "$RASA_GPU_BASELINE"); fi
rasa-gpu ci "$RASA_GPU_BOT" --report "$RASA_GPU_REPORT" "${baseline[@]}"
"""


@dataclass(frozen=True)
class TemplateOptions:
    bot: str = "."  # the bot folder in the repository
    runner_labels: tuple[str, ...] = ("self-hosted", "linux", "gpu")  # GitHub labels; GitLab tags
    default_branch: str = "main"
    package: str = f"rasa-gpu=={__version__}"  # what pip installs on the runner


def render(kind: str, options: TemplateOptions) -> str:
    if kind not in KINDS:
        raise SettingsError(f"--init takes one of {', '.join(KINDS)}, not '{kind}'")
    return _github(options) if kind == "github" else _gitlab(options)


def _q(value: str) -> str:
    """A YAML scalar that reads back as exactly `value` (JSON is YAML)."""
    return json.dumps(value)


def _block(script: str, indent: int) -> str:
    pad = " " * indent
    return "\n".join(pad + line if line else "" for line in script.rstrip("\n").split("\n"))


def _github(o: TemplateOptions) -> str:
    labels = ", ".join(_q(label) for label in o.runner_labels)
    comment = f"""const fs = require('fs');
const body = fs.readFileSync(process.env.RASA_GPU_REPORT, 'utf8');
const marker = {json.dumps(COMMENT_MARKER)};
const {{ owner, repo }} = context.repo;
const issue_number = context.issue.number;
const comments = await github.paginate(github.rest.issues.listComments, {{ owner, repo, issue_number }});
const mine = comments.find((c) => c.body && c.body.includes(marker));
if (mine) {{
  await github.rest.issues.updateComment({{ owner, repo, comment_id: mine.id, body }});
}} else {{
  await github.rest.issues.createComment({{ owner, repo, issue_number, body }});
}}"""
    return f"""# Written by `rasa-gpu ci --init github` (rasa-gpu {__version__}).
# Every pull request: validate, train on the GPU runner, test on a fixed test set, compare with the default branch's
# last report, post (or update) one comment with the report, and fail the check when a rule of [ci] fail_on in
# rasa-gpu.toml fails. Pushes to the default branch leave their report as the next pull requests' baseline.
# Runner: a machine with an NVIDIA GPU, Docker and Python 3.9+, registered with the labels below (docs: Teams and CI).
# Image cache: set the repository variable RASA_GPU_REGISTRY (and the secrets REGISTRY_USER, REGISTRY_PASSWORD) to
# pull the training image instead of building it, and to publish it from the default branch.
name: rasa-gpu ci

on:
  pull_request:
  push:
    branches: [{_q(o.default_branch)}]

permissions:
  contents: read
  pull-requests: write

concurrency:
  group: rasa-gpu-ci-${{{{ github.ref }}}}
  cancel-in-progress: true

env:
  RASA_GPU_PACKAGE: {_q(o.package)}
  RASA_GPU_BOT: {_q(o.bot)}
  RASA_GPU_REPORT: {_q(REPORT)}
  RASA_GPU_BASELINE: {_q(BASELINE)}
  RASA_GPU_REGISTRY: ${{{{ vars.RASA_GPU_REGISTRY }}}}

jobs:
  rasa-gpu-ci:
    runs-on: [{labels}]
    timeout-minutes: 180
    steps:
      - uses: actions/checkout@v4

      - name: Install rasa-gpu
        run: |
          python3 -m venv "$RUNNER_TEMP/rasa-gpu"
          "$RUNNER_TEMP/rasa-gpu/bin/pip" install --quiet "$RASA_GPU_PACKAGE"
          echo "$RUNNER_TEMP/rasa-gpu/bin" >> "$GITHUB_PATH"

      - name: Log in to the image registry
        if: env.RASA_GPU_REGISTRY != ''
        env:
          REGISTRY_USER: ${{{{ secrets.REGISTRY_USER }}}}
          REGISTRY_PASSWORD: ${{{{ secrets.REGISTRY_PASSWORD }}}}
        run: printf '%s' "$REGISTRY_PASSWORD" | docker login "${{RASA_GPU_REGISTRY%%/*}}" -u "$REGISTRY_USER" --password-stdin

      - name: The default branch's last report (the baseline)
        uses: actions/cache/restore@v4
        with:
          path: .rasa-gpu-baseline
          key: rasa-gpu-baseline-${{{{ github.sha }}}}
          restore-keys: rasa-gpu-baseline-

      - name: rasa-gpu ci
        shell: bash
        run: |
{_block(CI_SCRIPT, 10)}

      - name: Keep the report
        if: always() && hashFiles('rasa-gpu-report/report.md') != ''
        uses: actions/upload-artifact@v4
        with:
          name: rasa-gpu-report
          path: rasa-gpu-report/

      - name: Post or update the pull request's comment
        if: always() && github.event_name == 'pull_request' && hashFiles('rasa-gpu-report/report.md') != ''
        uses: actions/github-script@v7
        with:
          script: |
{_block(comment, 12)}

      - name: Publish the training image for the other runners
        if: github.event_name == 'push' && env.RASA_GPU_REGISTRY != ''
        run: rasa-gpu push "$RASA_GPU_BOT" --registry "$RASA_GPU_REGISTRY"

      - name: Leave this report as the baseline
        if: github.event_name == 'push'
        run: mkdir -p .rasa-gpu-baseline && cp rasa-gpu-report/report.json "$RASA_GPU_BASELINE"

      - name: Save the baseline
        if: github.event_name == 'push'
        uses: actions/cache/save@v4
        with:
          path: .rasa-gpu-baseline
          key: rasa-gpu-baseline-${{{{ github.sha }}}}
"""


def _gitlab(o: TemplateOptions) -> str:
    tags = ", ".join(_q(tag) for tag in o.runner_labels if tag != "self-hosted")
    comment = f"""python3 - <<'PY'
import json, os, urllib.request
api = f"{{os.environ['CI_API_V4_URL']}}/projects/{{os.environ['CI_PROJECT_ID']}}/merge_requests/{{os.environ['CI_MERGE_REQUEST_IID']}}/notes"
headers = {{"PRIVATE-TOKEN": os.environ["RASA_GPU_GITLAB_TOKEN"], "Content-Type": "application/json"}}
body = open(os.environ["RASA_GPU_REPORT"], encoding="utf-8").read()
notes = json.load(urllib.request.urlopen(urllib.request.Request(api + "?per_page=100", headers=headers)))
mine = [n for n in notes if {json.dumps(COMMENT_MARKER)} in n.get("body", "")]
url, method = (f"{{api}}/{{mine[0]['id']}}", "PUT") if mine else (api, "POST")
data = json.dumps({{"body": body}}).encode()
urllib.request.urlopen(urllib.request.Request(url, data=data, headers=headers, method=method))
PY"""
    branch = _q(o.default_branch)
    return f"""# Written by `rasa-gpu ci --init gitlab` (rasa-gpu {__version__}).
# Every merge request: validate, train on the GPU runner, test on a fixed test set, compare with the default branch's
# last report, post (or update) one note with the report, and fail the pipeline when a rule of [ci] fail_on in
# rasa-gpu.toml fails. The default branch leaves its report in the cache as the next merge requests' baseline.
# Runner: a shell executor on a machine with an NVIDIA GPU, Docker and Python 3.9+, with the tags below (docs: Teams
# and CI). The note needs a project access token (scope api) in the masked variable RASA_GPU_GITLAB_TOKEN.
# Image cache: set RASA_GPU_REGISTRY (and REGISTRY_USER, REGISTRY_PASSWORD) to pull the training image instead of
# building it, and to publish it from the default branch.

.rasa-gpu-ci:
  tags: [{tags}]
  timeout: 3h
  variables:
    RASA_GPU_PACKAGE: {_q(o.package)}
    RASA_GPU_BOT: {_q(o.bot)}
    RASA_GPU_REPORT: {_q(REPORT)}
    RASA_GPU_BASELINE: {_q(BASELINE)}
  before_script:
    - python3 -m venv .rasa-gpu-venv
    - .rasa-gpu-venv/bin/pip install --quiet "$RASA_GPU_PACKAGE"
    - export PATH="$PWD/.rasa-gpu-venv/bin:$PATH"
    - >-
      if [ -n "${{RASA_GPU_REGISTRY:-}}" ]; then printf '%s' "$REGISTRY_PASSWORD" |
      docker login "${{RASA_GPU_REGISTRY%%/*}}" -u "$REGISTRY_USER" --password-stdin; fi
  artifacts:
    when: always
    paths: [rasa-gpu-report/]
    expire_in: 30 days

rasa-gpu-ci:
  extends: .rasa-gpu-ci
  rules:
    - if: $CI_PIPELINE_SOURCE == "merge_request_event"
  cache:
    key: rasa-gpu-baseline
    paths: [.rasa-gpu-baseline/]
    policy: pull
  script:
    - |
{_block(CI_SCRIPT, 6)}
  after_script:
    - |
      [ -f "$RASA_GPU_REPORT" ] || exit 0
{_block(comment, 6)}

rasa-gpu-ci-baseline:
  extends: .rasa-gpu-ci
  rules:
    - if: $CI_COMMIT_BRANCH == {branch}
  cache:
    key: rasa-gpu-baseline
    paths: [.rasa-gpu-baseline/]
    policy: pull-push
  script:
    - |
{_block(CI_SCRIPT, 6)}
    - mkdir -p .rasa-gpu-baseline && cp "${{RASA_GPU_REPORT%.md}}.json" "$RASA_GPU_BASELINE"
    - if [ -n "${{RASA_GPU_REGISTRY:-}}" ]; then rasa-gpu push "$RASA_GPU_BOT" --registry "$RASA_GPU_REGISTRY"; fi
"""
