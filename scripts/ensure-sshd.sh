#!/usr/bin/env bash
# Make sure this machine can run the SSH tests: OpenSSH's server, sftp-server and client, and the
# privilege-separation directory sshd needs when started as root. Idempotent; installs only what
# is missing (with apt-get, as root, non-interactively). The tests start their own sshd processes
# on loopback ports (tests/sshd.py); nothing here starts or configures a system sshd.
set -euo pipefail

missing=()
[ -x /usr/sbin/sshd ] || missing+=(openssh-server)
[ -x /usr/lib/openssh/sftp-server ] || missing+=(openssh-sftp-server)
command -v ssh >/dev/null 2>&1 && command -v ssh-keygen >/dev/null 2>&1 || missing+=(openssh-client)

if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "ensure-sshd: missing ${missing[*]}; run as root or install them: apt-get install ${missing[*]}" >&2
        exit 1
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "ensure-sshd: missing ${missing[*]} and no apt-get here; install OpenSSH (server, sftp-server, client)" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # Install all three so versions match; --no-install-recommends keeps it small.
    apt-get install -y -qq --no-install-recommends openssh-server openssh-sftp-server openssh-client >/dev/null
    # Package scripts may start a system sshd on port 22 where an init system exists; the tests
    # do not need it and do not touch it.
fi

if [ "$(id -u)" -eq 0 ]; then
    mkdir -p /run/sshd
    chmod 0755 /run/sshd
fi
echo "ensure-sshd: $(/usr/sbin/sshd -V 2>&1 | head -n1 || true) ready" >&2
