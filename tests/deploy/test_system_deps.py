"""tests/support/system-deps.sh installs Debian's prometheus and prometheus-alertmanager without starting or
enabling their services: while apt-get installs, a policy-rc.d refuses every service action; afterwards the
policy-rc.d that was there is back (or none), also when the install fails, and the packages' services are
disabled.

apt-get, dpkg-query, systemctl and sudo are stand-ins here that record what the script asked of them (a real
install is a change to the machine; deploy/README.md says how the script was run for real)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "tests" / "support" / "system-deps.sh"

# What the script runs besides the stand-ins, from the machine
TOOLS = ("bash", "env", "id", "cat", "chmod", "cp", "rm", "mktemp", "grep", "tee", "printf")

APT_GET = """#!/bin/sh
# records each call, and during an install whether the policy file refuses service actions
echo "apt-get $*" >> "$LOG"
case "$*" in *install*)
    if [ -x "$POLICY_RC_D" ]; then "$POLICY_RC_D" prometheus start; echo "policy-rc.d exit $?" >> "$LOG"
    else echo "policy-rc.d absent" >> "$LOG"; fi
    exit "${APT_EXIT:-0}";;
esac
"""
DPKG_QUERY = """#!/bin/sh
echo "/usr/share/doc/$2/copyright"
echo "/lib/systemd/system/$2.service"
"""
SYSTEMCTL = """#!/bin/sh
echo "systemctl $*" >> "$LOG"
"""
# the script asks `sudo -n` when not run as root: here it runs the command as the test's user
SUDO = """#!/bin/sh
shift
exec "$@"
"""


@pytest.fixture
def machine(tmp_path):
    """A PATH with the script's tools and the stand-ins, and none of the binaries it installs."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in TOOLS:
        found = shutil.which(tool)
        if found:  # printf is a shell builtin where no binary exists
            (bin_dir / tool).symlink_to(found)
    for name, text in (
        ("apt-get", APT_GET),
        ("dpkg-query", DPKG_QUERY),
        ("systemctl", SYSTEMCTL),
        ("sudo", SUDO),
    ):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    return tmp_path


def run(machine: Path, **env: str) -> tuple[subprocess.CompletedProcess, list[str]]:
    log = machine / "log"
    log.touch()
    done = subprocess.run(
        [str(machine / "bin" / "bash"), str(SCRIPT)],
        env={
            "PATH": str(machine / "bin"),
            "LOG": str(log),
            "POLICY_RC_D": str(machine / "policy-rc.d"),
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done, log.read_text().splitlines()


def test_no_service_starts_during_the_install_and_the_previous_policy_comes_back(machine):
    policy = machine / "policy-rc.d"
    policy.write_text("#!/bin/sh\n# the machine's own\nexit 0\n")
    policy.chmod(0o755)
    done, log = run(machine)
    assert done.returncode == 0, done.stderr
    install = next(line for line in log if line.startswith("apt-get install"))
    assert install.split()[-4:] == ["prometheus", "prometheus-alertmanager", "systemd", "chromium"]
    assert "--no-install-recommends" in install
    assert log[log.index(install) + 1] == "policy-rc.d exit 101"
    assert policy.read_text() == "#!/bin/sh\n# the machine's own\nexit 0\n"
    assert os.access(policy, os.X_OK)
    # both services disabled after the install; nothing enabled, started or restarted
    systemctl = [line for line in log if line.startswith("systemctl")]
    assert systemctl == [
        "systemctl disable prometheus.service",
        "systemctl disable prometheus-alertmanager.service",
    ]


def test_a_machine_without_a_policy_is_left_without_one_also_when_the_install_fails(machine):
    done, log = run(machine, APT_EXIT="100")
    assert done.returncode != 0
    assert "policy-rc.d exit 101" in log
    assert not (machine / "policy-rc.d").exists()
    assert not [line for line in log if line.startswith("systemctl")]


def test_nothing_is_installed_when_nothing_is_missing(machine):
    for binary in ("prometheus", "promtool", "prometheus-alertmanager", "systemd-analyze", "chromium"):
        (machine / "bin" / binary).write_text("#!/bin/sh\n")
        (machine / "bin" / binary).chmod(0o755)
    done, log = run(machine)
    assert done.returncode == 0, done.stderr
    assert log == []
    assert not (machine / "policy-rc.d").exists()
