#!/usr/bin/env bash
# System packages the test suite runs for real: a Prometheus server and promtool (Debian's prometheus
# package) for tests/deploy and the scrape test, Alertmanager (Debian's prometheus-alertmanager package, whose
# binary is prometheus-alertmanager) for the budget alerts' delivery test, systemd-analyze (systemd) for the
# unit file's checks, Chromium (Debian's chromium package) for the console's browser test.
# Installed only when missing; without recommends, so no exporter comes along.
#
# The tests start the binaries themselves, so the install starts and enables no service: Debian's prometheus
# and prometheus-alertmanager would otherwise start theirs at once and at every boot (see
# install_without_services).
set -euo pipefail

# Packages that ship a service the tests never use
SERVICE_PACKAGES=(prometheus prometheus-alertmanager)
# What invoke-rc.d and deb-systemd-invoke ask before a maintainer script starts a service (policy-rc.d(8))
POLICY_RC_D=${POLICY_RC_D:-/usr/sbin/policy-rc.d}

# apt-get install "$@" while a policy-rc.d answers 101 ("action forbidden") to every start; then the
# policy-rc.d that was there before is put back (Docker's Debian images ship one), or none, also when the
# install fails. Debian's scripts still enable a new package's service for the next boot, so those of
# SERVICE_PACKAGES are disabled again. Runs commands through "${as_root[@]}".
install_without_services() {
    local saved="" unit package
    if [ -e "$POLICY_RC_D" ]; then
        saved=$(mktemp)
        "${as_root[@]}" cp -p "$POLICY_RC_D" "$saved"
    fi
    # shellcheck disable=SC2064  # the paths are fixed now
    trap "restore_policy '$saved'" EXIT
    printf '#!/bin/sh\n# tests/support/system-deps.sh: no service starts while it installs packages\nexit 101\n' \
        | "${as_root[@]}" tee "$POLICY_RC_D" >/dev/null
    "${as_root[@]}" chmod 0755 "$POLICY_RC_D"
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@"
    restore_policy "$saved"
    trap - EXIT
    for package in "${SERVICE_PACKAGES[@]}"; do
        [[ " $* " == *" $package "* ]] || continue
        for unit in $(dpkg-query -L "$package" | grep -E '/systemd/system/[^/]+\.service$' || true); do
            "${as_root[@]}" systemctl disable "${unit##*/}"
        done
    done
}

restore_policy() {
    if [ -n "$1" ]; then
        "${as_root[@]}" cp -p "$1" "$POLICY_RC_D"
        "${as_root[@]}" rm -f "$1"
    else
        "${as_root[@]}" rm -f "$POLICY_RC_D"
    fi
}

# sourced (to run install_without_services by hand), the script only defines the functions
[[ "${BASH_SOURCE[0]}" == "$0" ]] || return 0

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
    install_without_services "${missing[@]}"
fi
