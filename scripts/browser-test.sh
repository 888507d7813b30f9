#!/usr/bin/env bash
# Opens the audit report of the quickstart in headless Chromium (installing
# Debian's chromium when missing) and checks it: no page or console errors, a
# screenshot, every data-metric number equal to the --json output.
# REDRAFT_AUDIT_SCREENSHOT=docs/audit-quickstart.png also writes the README's
# screenshot.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${REDRAFT_CHROMIUM:-}" ] && ! command -v chromium >/dev/null && ! command -v chromium-browser >/dev/null; then
  echo "installing chromium (apt-get)"
  if [ "$(id -u)" = 0 ]; then sudo=; else sudo=sudo; fi
  $sudo apt-get install -y chromium >/dev/null 2>&1 || { $sudo apt-get update >/dev/null && $sudo apt-get install -y chromium >/dev/null; }
fi
REDRAFT_REQUIRE_BROWSER=1 go test -count=1 -run '^(TestAuditReportInBrowser|TestViewInBrowser)$' -v ./e2e/ | grep -E '^(---|ok|FAIL|PASS)|_test.go'
