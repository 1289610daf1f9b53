#!/bin/sh
# Prepares this machine (Debian 12, root, no systemd) for the libvirt end-to-end
# suite, and starts libvirtd daemons that stand in for separate hosts.
#
#   setup.sh install            apt packages, the libvirt-qemu user, a container-safe qemu.conf
#   setup.sh host STATE_DIR     in the foreground, until SIGTERM: one "host", a subreaper (`tini -s`,
#                               prctl PR_SET_CHILD_SUBREAPER) in its own mount namespace whose
#                               /etc/libvirt/hooks, /etc/libvirt/qemu, /run/libvirt, /var/lib/libvirt,
#                               /var/cache/libvirt and /var/log/libvirt are STATE_DIR/...; its child
#                               runs libvirtd and starts it again whenever it exits. Output goes
#                               to STATE_DIR/libvirtd.log, the reaper's pid to STATE_DIR/host.pid.
#                               The test harness runs this as its own child, so it reaps it.
#   setup.sh wait STATE_DIR     waits until that host's libvirtd answers; prints libvirtd's pid
#   setup.sh start STATE_DIR    `host` in the background (setsid), then `wait` (for use by hand)
#   setup.sh restart-libvirtd STATE_DIR
#                               SIGTERM to libvirtd alone (running VMs stay: their processes are
#                               the reaper's); waits until the next libvirtd answers
#   setup.sh stop STATE_DIR     SIGTERM to the reaper: libvirtd stops, then the reaper exits
#                               (SIGKILL to both after 10 s)
#
# Why a reaper per host that outlives libvirtd: libvirt daemonizes each qemu (here: the
# vmlease supervisor), so its parent is the nearest subreaper, else the pid namespace's init.
# Under an init that does not reap (`unshare -p -f --mount-proc CMD` makes CMD pid 1), a
# supervisor orphaned by a libvirtd restart would stay a zombie after it exits, and libvirtd
# would wait in `virsh destroy` for a process that never vanishes. The reaper is the ancestor of
# every libvirtd it starts and of every process they daemonize, so nothing depends on pid 1.
#
# Every step is idempotent. A private mount namespace per host keeps the
# machine's own /etc/libvirt untouched and lets two "hosts" share one kernel.
set -eu

PACKAGES="libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients qemu-system-x86 tini"
START_TIMEOUT_S=30
SELF=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")

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

# The state directory as an absolute path (created).
state_dir() {
  mkdir -p "$1"
  (cd "$1" && pwd)
}

# Whether PID runs (exists and is not a zombie).
running() {
  [ -r "/proc/$1/stat" ] || return 1
  st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1) || return 1
  [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

# Waits up to $2 tenths of a second for PID $1 to stop running.
wait_gone() {
  i=0
  while running "$1" && [ $i -lt "$2" ]; do sleep 0.1; i=$((i + 1)); done
  ! running "$1"
}

host() {
  state=$(state_dir "$1")
  if [ -f "$state/host.pid" ] && running "$(cat "$state/host.pid")"; then die "host $state runs already (pid $(cat "$state/host.pid"))"; fi
  for d in etc-hooks etc-qemu run lib cache log; do mkdir -p "$state/$d"; done
  chmod 0755 "$state" "$state/run" "$state/lib"
  rm -f "$state/run/libvirtd.pid"
  echo $$ > "$state/host.pid"
  exec >>"$state/libvirtd.log" 2>&1 </dev/null
  # unshare: a new mount namespace (private propagation) with the state dirs bound over
  # libvirt's; tini -s (keeping this pid) is the subreaper; its child sh runs libvirtd in a loop.
  exec unshare --mount --propagation private tini -s -- sh -c '
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
    stopping=""
    pid=""
    trap '\''stopping=1; [ -z "$pid" ] || kill -TERM "$pid" 2>/dev/null'\'' TERM INT HUP
    while [ -z "$stopping" ]; do
      echo "setup.sh: starting libvirtd ($(date -u +%FT%TZ))"
      /usr/sbin/libvirtd --pid-file /run/libvirt/libvirtd.pid &
      pid=$!
      # wait returns early when a trapped signal arrives; libvirtd may still run then.
      while kill -0 "$pid" 2>/dev/null; do wait "$pid" || true; done
      echo "setup.sh: libvirtd $pid exited ($(date -u +%FT%TZ))"
      pid=""
      [ -n "$stopping" ] || sleep 0.2
    done
  ' host-loop "$state"
}

# Waits until the host's libvirtd answers on its socket and is not pid $2 (a stopped one); prints its pid.
wait_answering() {
  state=$(state_dir "$1")
  old=${2:-}
  i=0
  while [ $i -lt $((START_TIMEOUT_S * 10)) ]; do
    pid=$(cat "$state/run/libvirtd.pid" 2>/dev/null || true)
    if [ -n "$pid" ] && [ "$pid" != "$old" ] && running "$pid" && [ -S "$state/run/libvirt-sock" ] \
      && timeout 10 virsh -c "qemu:///system?socket=$state/run/libvirt-sock" version >/dev/null 2>&1; then
      echo "$pid"
      return
    fi
    if [ -f "$state/host.pid" ] && ! running "$(cat "$state/host.pid")"; then die "the host's reaper exited: $(tail -5 "$state/libvirtd.log")"; fi
    sleep 0.1
    i=$((i + 1))
  done
  die "libvirtd did not answer within ${START_TIMEOUT_S} s: $(tail -5 "$state/libvirtd.log")"
}

start() {
  state=$(state_dir "$1")
  if ! { [ -f "$state/host.pid" ] && running "$(cat "$state/host.pid")"; }; then
    rm -f "$state/host.pid"
    setsid sh "$SELF" host "$state" </dev/null >/dev/null 2>&1 &
    i=0
    while [ ! -f "$state/host.pid" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
  fi
  wait_answering "$state"
}

restart_libvirtd() {
  state=$(state_dir "$1")
  old=$(cat "$state/run/libvirtd.pid" 2>/dev/null) || die "no libvirtd pid in $state/run/libvirtd.pid"
  kill -TERM "$old" 2>/dev/null || true
  wait_gone "$old" 100 || kill -KILL "$old" 2>/dev/null || true
  wait_answering "$state" "$old"
}

stop() {
  state=$(state_dir "$1")
  [ -f "$state/host.pid" ] || return 0
  reaper=$(cat "$state/host.pid")
  libvirtd=$(cat "$state/run/libvirtd.pid" 2>/dev/null || true)
  if running "$reaper"; then
    kill -TERM "$reaper" 2>/dev/null || true
    if ! wait_gone "$reaper" 100; then
      [ -z "$libvirtd" ] || kill -KILL "$libvirtd" 2>/dev/null || true
      kill -KILL "$reaper" 2>/dev/null || true
    fi
  fi
  rm -f "$state/host.pid"
}

case "${1:-}" in
  install) install_packages; make_user; write_qemu_conf ;;
  host | wait | start | restart-libvirtd | stop)
    [ $# -eq 2 ] || die "usage: setup.sh $1 STATE_DIR"
    case "$1" in
      host) host "$2" ;;
      wait) wait_answering "$2" ;;
      start) start "$2" ;;
      restart-libvirtd) restart_libvirtd "$2" ;;
      stop) stop "$2" ;;
    esac ;;
  *) die "usage: setup.sh install | host | wait | start | restart-libvirtd | stop STATE_DIR" ;;
esac
