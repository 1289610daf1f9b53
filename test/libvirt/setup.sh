#!/bin/sh
# Prepares this machine (Debian 12, root, no systemd) for the libvirt end-to-end
# suite, and starts libvirtd daemons that stand in for separate hosts.
#
#   setup.sh install            apt packages, the libvirt-qemu user, a container-safe qemu.conf
#   setup.sh start STATE_DIR    a libvirtd in its own mount namespace whose /etc/libvirt/hooks,
#                               /etc/libvirt/qemu, /run/libvirt, /var/lib/libvirt,
#                               /var/cache/libvirt and /var/log/libvirt are STATE_DIR/...; prints
#                               its pid once STATE_DIR/run/libvirt-sock answers
#   setup.sh stop STATE_DIR     stops that libvirtd (SIGTERM, then SIGKILL after 10 s)
#
# Every step is idempotent. A private mount namespace per libvirtd keeps the
# machine's own /etc/libvirt untouched and lets two "hosts" share one kernel.
set -eu

PACKAGES="libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients qemu-system-x86 tini"
START_TIMEOUT_S=30

die() { echo "setup.sh: $*" >&2; exit 1; }

install_packages() {
  missing=""
  for p in $PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
  done
  if [ -n "$missing" ]; then
    echo "setup.sh: installing$missing"
    export DEBIAN_FRONTEND=noninteractive
    # apt's lists may be absent in a fresh container; a failed update still lets a cached install work.
    timeout 300 apt-get update -q || true
    timeout 600 apt-get install -y -q --no-install-recommends $missing
  fi
}

make_user() {
  getent group libvirt-qemu >/dev/null || groupadd --system libvirt-qemu
  getent passwd libvirt-qemu >/dev/null || useradd --system --gid libvirt-qemu --home-dir /var/lib/libvirt --no-create-home --shell /usr/sbin/nologin libvirt-qemu
}

# SPEC section 7: no security driver (no SELinux/AppArmor in a container), no cgroups, no
# per-VM mount namespace, qemu's output to a file (virtlogd is not running), qemu as libvirt-qemu.
write_qemu_conf() {
  conf=/etc/libvirt/qemu.conf
  want='# Written by vmlease test/libvirt/setup.sh: container-safe settings for the end-to-end suite.
security_driver = "none"
cgroup_controllers = [ ]
namespaces = [ ]
stdio_handler = "file"
user = "libvirt-qemu"
group = "libvirt-qemu"
'
  mkdir -p /etc/libvirt
  if [ -f "$conf" ] && [ "$(cat "$conf")" = "$(printf '%s' "$want")" ]; then return; fi
  if [ -f "$conf" ] && [ ! -f "$conf.vmlease-orig" ] && ! grep -q 'vmlease test/libvirt/setup.sh' "$conf"; then cp -p "$conf" "$conf.vmlease-orig"; fi
  printf '%s' "$want" > "$conf"
  echo "setup.sh: wrote $conf"
}

start() {
  state=$1
  mkdir -p "$state"
  state=$(cd "$state" && pwd)
  pidfile="$state/libvirtd.tini.pid"
  if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then cat "$pidfile"; return; fi
  for d in etc-hooks etc-qemu run lib cache log; do mkdir -p "$state/$d"; done
  chmod 0755 "$state" "$state/run" "$state/lib"
  # unshare: a new mount namespace (private propagation), bind the state dirs over libvirt's, then
  # tini -s reaps the qemus libvirtd leaves behind (libvirtd is not pid 1 here and has no init to do it).
  setsid unshare --mount --propagation private sh -c '
    s=$1
    for pair in etc-hooks:/etc/libvirt/hooks etc-qemu:/etc/libvirt/qemu run:/run/libvirt lib:/var/lib/libvirt cache:/var/cache/libvirt log:/var/log/libvirt; do
      mkdir -p "${pair#*:}"
      mount --bind "$s/${pair%%:*}" "${pair#*:}"
    done
    mkdir -p /var/lib/libvirt/qemu /var/log/libvirt/qemu /var/cache/libvirt/qemu
    # Measured here: /dev/kvm is root 0600, libvirt finds it unusable for libvirt-qemu, yet its
    # probe reports KVM, so every lookup finds the cached capabilities "outdated" and re-probes
    # (~6 s per define/start). The tests run type=qemu (TCG) domains: hide the device.
    if [ -e /dev/kvm ]; then : > "$s/no-kvm"; chmod 0600 "$s/no-kvm"; mount --bind "$s/no-kvm" /dev/kvm; fi
    exec tini -s -- /usr/sbin/libvirtd --pid-file /run/libvirt/libvirtd.pid
  ' unshare-libvirtd "$state" >"$state/libvirtd.log" 2>&1 </dev/null &
  echo $! > "$pidfile"
  i=0
  while [ $i -lt $((START_TIMEOUT_S * 10)) ]; do
    if [ -S "$state/run/libvirt-sock" ] && timeout 10 virsh -c "qemu:///system?socket=$state/run/libvirt-sock" version >/dev/null 2>&1; then
      cat "$pidfile"
      return
    fi
    kill -0 "$(cat "$pidfile")" 2>/dev/null || die "libvirtd exited: $(tail -5 "$state/libvirtd.log")"
    sleep 0.1
    i=$((i + 1))
  done
  die "libvirtd did not answer within ${START_TIMEOUT_S} s: $(tail -5 "$state/libvirtd.log")"
}

stop() {
  pidfile="$1/libvirtd.tini.pid"
  [ -f "$pidfile" ] || return 0
  pid=$(cat "$pidfile")
  kill -TERM "$pid" 2>/dev/null || { rm -f "$pidfile"; return 0; }
  i=0
  while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$pidfile"
}

case "${1:-}" in
  install) install_packages; make_user; write_qemu_conf ;;
  start) [ $# -eq 2 ] || die "usage: setup.sh start STATE_DIR"; start "$2" ;;
  stop) [ $# -eq 2 ] || die "usage: setup.sh stop STATE_DIR"; stop "$2" ;;
  *) die "usage: setup.sh install | start STATE_DIR | stop STATE_DIR" ;;
esac
