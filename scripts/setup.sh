#!/usr/bin/env bash
# One idempotent set-up step for the OVCT testbed (Debian 12, as root):
#   1. installs the Debian packages the stack needs (only those missing),
#   2. creates .venv (from Debian's /usr/bin/python3, with system site
#      packages so Debian's mininet is importable) and installs the project
#      into it when setup.py changed,
#   3. builds the guest image unless the current recipe's is cached,
#   4. starts Open vSwitch when it is not running.
# Re-running it on a ready machine takes about a second.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${OVCT_VENV:-$ROOT/.venv}"

log() { printf '[setup] %s\n' "$*" >&2; }
die() { printf '[setup] error: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root (try: sudo $0)"

# --- 1. Debian packages ----------------------------------------------------
# Keep this list in sync with testbed/preflight.py (which tells a user what
# is missing); tests/unit/test_preflight.py checks that they agree.
DEB_PACKAGES=(
  openvswitch-switch mininet
  iproute2 iputils-ping iputils-arping iperf3 ethtool tcpdump procps
  util-linux python3 python3-venv python3-pip
  # the README's commands as written: `sudo ...`, absent on a root-only
  # machine, and `python`, since Debian ships only `python3`
  sudo python-is-python3
  # `mn --custom testbed/mn_topos.py` runs Debian's mn with the system
  # Python: the topology module needs networkx there too
  python3-networkx
  # KVM hosts and the guest image
  qemu-system-x86 qemu-utils libvirt-daemon libvirt-daemon-driver-qemu
  libvirt-clients python3-libvirt debootstrap squashfs-tools cpio nftables
  # cluster mode: ssh to the other servers; sshd for the stand-in servers
  # (installed without starting or enabling the system's own sshd)
  openssh-client openssh-server
)

missing=()
for p in "${DEB_PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
if [ "${#missing[@]}" -gt 0 ]; then
  log "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  # installing openssh-server must not start (or enable) an sshd of the
  # system: cluster mode starts its own, by PID, only where asked
  new_sshd=0
  if ! dpkg-query -W -f='${Status}' openssh-server 2>/dev/null | grep -q 'install ok installed'; then
    new_sshd=1
  fi
  own_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    own_policy=1
  fi
  rc=0
  apt-get install -y -q --no-install-recommends "${missing[@]}" || rc=$?
  if [ "$own_policy" -eq 1 ]; then rm -f /usr/sbin/policy-rc.d; fi
  [ "$rc" -eq 0 ] || die "apt-get install failed ($rc)"
  if [ "$new_sshd" -eq 1 ] && command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
    systemctl disable ssh.service >/dev/null 2>&1 || true
  fi
fi

# QEMU: Debian 12's 7.2 loses guest memory writes during a live migration
# under TCG (QEMU bug fixed upstream in 9.0, commit 03bfc2188f "physmem: Fix
# migration dirty bitmap coherency with TCG memory access"): guests then
# panic after ~1 % of migrations. Take QEMU from Debian's bookworm-backports.
if grep -qs '^VERSION_CODENAME=bookworm' /etc/os-release; then
  qemu_major="$(dpkg-query -W -f='${Version}' qemu-system-x86 2>/dev/null \
                | sed -E 's/^[0-9]+://; s/[^0-9].*//')"
  if [ "${qemu_major:-0}" -lt 9 ]; then
    bp=/etc/apt/sources.list.d/ovct-bookworm-backports.sources
    if [ ! -f "$bp" ]; then
      mirror="$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null)"
      printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: %s\n' \
        "${mirror:-http://deb.debian.org/debian}" /usr/share/keyrings/debian-archive-keyring.gpg > "$bp"
      log "added $bp (QEMU >= 9 for correct TCG live migration)"
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends -t bookworm-backports qemu-system-x86
  fi
fi

# libvirt's QEMU driver refuses to start without this user and group (the
# libvirt-daemon-system package would create them, but it also starts a
# system-wide libvirtd, which we do not want: each KVM host runs its own).
getent group libvirt-qemu >/dev/null || groupadd --system libvirt-qemu
getent passwd libvirt-qemu >/dev/null || useradd --system -g libvirt-qemu \
  -d /var/lib/libvirt -s /usr/sbin/nologin libvirt-qemu

# --- 2. venv ---------------------------------------------------------------
# Debian's mininet is installed for /usr/bin/python3 only, so the venv must
# be built from that interpreter and see its site-packages.
stamp="$VENV/.ovct-installed"
want="$(cat "$ROOT/setup.py" | sha256sum | cut -d' ' -f1)"
if [ ! -x "$VENV/bin/python" ]; then
  log "creating venv $VENV"
  /usr/bin/python3 -m venv --system-site-packages "$VENV"
fi
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  log "installing the project into $VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check -e "$ROOT[test]"
  echo "$want" > "$stamp"
fi
"$VENV/bin/python" -c 'import mininet.net, os_ken, networkx' \
  || die "the venv cannot import mininet/os_ken/networkx"

# --- 3. guest image (cached; rebuilt only when its recipe changes) ---------
if ! "$VENV/bin/python" -m testbed.guest_image path >/dev/null 2>&1; then
  log "building the guest image (Debian kernel, busybox initramfs, debootstrap root with TigerVNC)"
  "$VENV/bin/python" -m testbed.guest_image build >/dev/null
fi

# --- 4. Open vSwitch ---------------------------------------------------------
if ! ovs-vsctl --timeout=5 show >/dev/null 2>&1; then
  log "starting Open vSwitch"
  # ovs-ctl prints a harmless ulimit error in containers; the check below is
  # what counts.
  /usr/share/openvswitch/scripts/ovs-ctl start --system-id=random >&2 || true
  ovs-vsctl --timeout=10 show >/dev/null || die "Open vSwitch did not start"
fi
log "ready (venv: $VENV)"
