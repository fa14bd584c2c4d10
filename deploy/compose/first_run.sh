#!/bin/sh
# The API steps of docs/deploy.md's first run, with curl. After /setup:
#   VOX_ADMIN_EMAIL=… VOX_ADMIN_PASSWORD=… sh deploy/compose/first_run.sh token
#       creates an eval agent token for region $VOX_REGION and prints it (shown once)
#   VOX_ADMIN_EMAIL=… VOX_ADMIN_PASSWORD=… sh deploy/compose/first_run.sh measure
#       measures the bundled demo voice agent page once in $VOX_REGION and prints the result
# VOX_URL (http://localhost:8080), VOX_REGION (local), VOX_DEMO_PAGE_URL
# (http://proxy:8081/index.html: the page as the agent reaches it). The password must not
# contain a double quote or a backslash (it is put in JSON as it is).
set -eu
VOX_URL=${VOX_URL:-http://localhost:8080}
VOX_REGION=${VOX_REGION:-local}
VOX_DEMO_PAGE_URL=${VOX_DEMO_PAGE_URL:-http://proxy:8081/index.html}
HERE=$(dirname "$0")
JAR=$(mktemp)
trap 'rm -f "$JAR"' EXIT

api() {
  curl -sS --fail-with-body -b "$JAR" -c "$JAR" -H 'content-type: application/json' "$@"
}
# The first "id" of a JSON answer: the created item's own.
first_id() {
  grep -o '"id":[0-9]*' | head -1 | cut -d: -f2
}
field() {
  grep -o "\"$1\":\"[^\"]*\"" | head -1 | cut -d'"' -f4
}

api -d "{\"login\":\"$VOX_ADMIN_EMAIL\",\"password\":\"$VOX_ADMIN_PASSWORD\"}" "$VOX_URL/api/auth/login" >/dev/null

case "${1:-}" in
  token)
    api -d "{\"name\":\"compose agent $(date +%s)\",\"region\":\"$VOX_REGION\"}" \
      "$VOX_URL/api/admin/agent-tokens" | field token
    ;;
  measure)
    project=$(api "$VOX_URL/api/v1/projects" | first_id)
    workflow=$(api -d "{\"projectId\":$project,\"name\":\"Demo voice agent\",\"provider\":{\"name\":\"Vox demo page\"},\"config\":{\"url\":\"$VOX_DEMO_PAGE_URL\",\"steps\":[]}}" \
      "$VOX_URL/api/v1/workflows" | first_id)
    evalset=$(api -d "{\"projectId\":$project,\"name\":\"Demo: two replies and a barge-in\",\"config\":$(cat "$HERE/demo_eval_set.json")}" \
      "$VOX_URL/api/v1/eval-sets" | first_id)
    job=$(api -d "{\"evalSetId\":$evalset,\"region\":\"$VOX_REGION\"}" "$VOX_URL/api/v1/workflows/$workflow/run" | first_id)
    echo "job $job queued in region $VOX_REGION" >&2
    i=0
    while :; do
      status=$(api "$VOX_URL/api/v1/jobs/$job" | field status)
      case "$status" in
        completed) break ;;
        failed | cancelled)
          api "$VOX_URL/api/v1/jobs/$job" >&2
          exit 1
          ;;
      esac
      i=$((i + 1))
      if [ "$i" -gt 300 ]; then
        echo "job $job is still $status after 5 minutes: is an agent of region $VOX_REGION online?" >&2
        exit 1
      fi
      sleep 1
    done
    api "$VOX_URL/api/v1/results?workflowId=$workflow"
    echo
    ;;
  *)
    echo "usage: first_run.sh token|measure (docs/deploy.md)" >&2
    exit 2
    ;;
esac
