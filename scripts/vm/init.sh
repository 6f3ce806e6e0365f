#!/bin/sh
# PID 1 of the svcplane test guest (dash, with busybox applets), put at /init by
# scripts/vm/fetch.sh.
#
# Protocol with the host (svcplane_tests::vm):
#   /svcplane/script   the test's shell script, run with /etc/svcplane-vm/lib.sh sourced first
#   /svcplane/config   TIMEOUT=<seconds for the script> VERBOSE=<0|1>
#   ttyS0 (console)    kernel messages and "@@svcplane-vm ..." progress lines
#   ttyS1              after the script ends: its stdout+stderr, then one line
#                      "@@svcplane-vm-exit <code> <timed_out 0|1>"; nothing else is written there
# Then the guest resets, which ends qemu (-no-reboot).
export PATH=/usr/sbin:/usr/bin HOME=/root
umask 022

mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
mkdir -p /run/netns
# Kernel messages stay off the console unless they are errors.
dmesg -n 3

say() { echo "@@svcplane-vm $*" >/dev/console; }
say "init uptime=$(cut -d' ' -f1 /proc/uptime)"

finish() { # code timed_out
  kill -9 -1 2>/dev/null # every process but init: nobody else holds ttyS1 now
  sleep 0.05
  [ -s /tmp/svcplane-output ] && [ "$(tail -c 1 /tmp/svcplane-output | wc -l)" = 0 ] &&
    echo >>/tmp/svcplane-output
  # One subshell opens ttyS1 and is its last closer: its exit waits until the UART has sent
  # everything, so the reset below cannot cut the output short.
  (
    stty raw -echo 2>/dev/null
    cat /tmp/svcplane-output
    echo "@@svcplane-vm-exit $1 $2"
  ) </dev/ttyS1 >/dev/ttyS1
  say "done exit=$1 timed_out=$2"
  reboot -f
  echo b >/proc/sysrq-trigger
  sleep 10
}

: >/tmp/svcplane-output
# One modprobe for all modules (a process per module costs seconds under emulation); the list
# is in dependency order and modules.dep was written by fetch.sh.
modules=$(cat /etc/svcplane-vm/modules)
modprobe -a $modules 2>/tmp/svcplane-modules
for m in $modules; do
  [ -d "/sys/module/$m" ] || echo "module $m did not load" >>/tmp/svcplane-modules
done
if grep -q 'did not load' /tmp/svcplane-modules; then
  cat /tmp/svcplane-modules >/dev/console
  cat /tmp/svcplane-modules >/tmp/svcplane-output
  finish 125 0
fi
ip link set lo up
say "modules loaded uptime=$(cut -d' ' -f1 /proc/uptime)"

TIMEOUT=60
VERBOSE=0
[ -f /svcplane/config ] && . /svcplane/config
if [ ! -f /svcplane/script ]; then
  echo "no /svcplane/script in the initramfs" >/tmp/svcplane-output
  finish 126 0
fi

say "start uptime=$(cut -d' ' -f1 /proc/uptime)"
[ "$VERBOSE" = 1 ] && tail -f /tmp/svcplane-output >/dev/console 2>/dev/null &
cd /svcplane
sh -c '. /etc/svcplane-vm/lib.sh && . /svcplane/script' </dev/null >/tmp/svcplane-output 2>&1 &
pid=$!
(sleep "$TIMEOUT" && touch /tmp/svcplane-timed-out && kill -9 "$pid") </dev/null >/dev/null 2>&1 &
wait "$pid"
code=$?
timed_out=0
[ -f /tmp/svcplane-timed-out ] && timed_out=1
say "script ended uptime=$(cut -d' ' -f1 /proc/uptime)"
finish "$code" "$timed_out"
