#!/usr/bin/env bash
# System packages the test suite runs for real: a Prometheus server and promtool (Debian's prometheus
# package) for tests/deploy and the scrape test, Alertmanager (Debian's prometheus-alertmanager package, whose
# binary is prometheus-alertmanager) for the budget alerts' delivery test, systemd-analyze (systemd) for the
# unit file's checks, Chromium (Debian's chromium package) for the console's browser test.
# Installed only when missing; without recommends, so no exporter comes along.
set -euo pipefail
missing=()
command -v prometheus >/dev/null && command -v promtool >/dev/null || missing+=(prometheus)
command -v prometheus-alertmanager >/dev/null || missing+=(prometheus-alertmanager)
command -v systemd-analyze >/dev/null || missing+=(systemd)
command -v chromium >/dev/null || missing+=(chromium)  # the console's browser test (tests/console)
if [ "${#missing[@]}" -gt 0 ]; then
    as_root=()
    if [ "$(id -u)" -ne 0 ]; then
        as_root=(sudo -n)
    fi
    "${as_root[@]}" apt-get update -q
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
