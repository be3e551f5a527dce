#!/usr/bin/env bash
# Build the lab's base image offline: debootstrap a minimal Debian bookworm and
# `docker import` it. Nothing is ever pulled from a registry (none is reachable).
# The image is tagged with a hash of this script, so editing the package list
# rebuilds it and an unchanged script reuses the image already present.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
name=${LAB_IMAGE:-conveyor-lab}
tag=$(sha256sum "$0" | cut -c1-12)
image="${name}:${tag}"

packages=(
  python3 python3-apt python3-jmespath
  systemd systemd-sysv dbus
  openssh-server sudo
  curl ca-certificates procps iproute2 less
  haproxy logrotate gpg
)

if docker image inspect "$image" >/dev/null 2>&1; then
  docker tag "$image" "${name}:latest"
  echo "lab image ${image} already present"
  exit 0
fi

root=$(mktemp -d /var/tmp/conveyor-rootfs.XXXXXX)
trap 'rm -rf "$root" "$root.log"' EXIT
echo "building ${image} with debootstrap (about a minute) ..."
debootstrap --variant=minbase --include="$(IFS=,; echo "${packages[*]}")" \
  bookworm "$root" "${DEBIAN_MIRROR:-http://deb.debian.org/debian}" >"$root.log" 2>&1 || {
  tail -n 30 "$root.log" >&2; echo "debootstrap failed (log above)" >&2; exit 1; }

# systemd in a container: no getty, no udev, no timers that hit the network;
# sshd accepts keys only; the image carries no host keys (made at first boot).
chroot "$root" /bin/sh -eu <<'CHROOT'
systemctl mask getty@tty1.service systemd-udevd.service systemd-udev-trigger.service \
  apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer \
  systemd-logind.service haproxy.service >/dev/null 2>&1 || true
rm -f /etc/ssh/ssh_host_*
mkdir -p /etc/systemd/system/ssh.service.d
printf '[Service]\nExecStartPre=\nExecStartPre=/usr/bin/ssh-keygen -A\nExecStartPre=/usr/sbin/sshd -t\n' \
  > /etc/systemd/system/ssh.service.d/hostkeys.conf
printf 'PasswordAuthentication no\nUseDNS no\n' > /etc/ssh/sshd_config.d/lab.conf
echo 'conveyor-lab' > /etc/hostname
apt-get clean
rm -rf /var/lib/apt/lists/* /usr/share/doc/* /usr/share/man/*
CHROOT
# Unmask haproxy only where the lab runs it (the load-balancer container).
tar -C "$root" -c . | docker import -c 'CMD ["/sbin/init"]' - "$image" >/dev/null
docker tag "$image" "${name}:latest"
rm -f "$root.log"
echo "built ${image}"
