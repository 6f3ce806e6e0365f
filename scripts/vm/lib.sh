# Sourced before every test script in the svcplane test guest (/bin/sh is dash).

# section NAME: starts a named part of the output; GuestRun::section("NAME") returns the lines
# printed after it, up to the next section or the end.
section() {
  echo "@@section $1"
}

# retry TRIES DELAY CMD...: runs CMD until it succeeds, at most TRIES times, sleeping DELAY
# seconds between attempts; returns CMD's last status.
retry() {
  _tries=$1 _delay=$2
  shift 2
  while :; do
    "$@" && return 0
    _status=$?
    _tries=$((_tries - 1))
    [ "$_tries" -le 0 ] && return "$_status"
    sleep "$_delay"
  done
}
