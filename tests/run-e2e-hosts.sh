#!/bin/bash
# The end-to-end suite on both QEMU generations at once: the whole suite on
# qemu-7.2, what depends on the host (not marked host_independent) on qemu-10.0.
# The guests are idle most of the time under TCG (the suites wait on the host's
# polling timer), so two runs side by side take little longer than one; each
# run's output goes to build/e2e-<host>.log and is printed when both are done.
# Fails if either fails. Usage (the Makefile's check target):
#   tests/run-e2e-hosts.sh BUILD VENV [pytest args...]
set -u
build=$(realpath "$1") venv=$2
shift 2
cd "$(dirname "$0")/.."

run() { # host, extra pytest args...
	local host=$1 dir="$build/hosts/$1"
	shift
	BALLAST_QEMU="$dir/qemu-system-x86_64" BALLAST_OVMF_CODE="$dir/OVMF_CODE.fd" \
		BALLAST_OVMF_VARS="$dir/OVMF_VARS.fd" BALLAST_BUILD="$build" \
		"$venv/bin/pytest" tests/e2e -p no:cacheprovider --durations=15 "$@" >"$build/e2e-$host.log" 2>&1
}

start=$SECONDS
run qemu-7.2 "$@" &
pid72=$!
run qemu-10.0 -m "not host_independent" "$@" &
pid10=$!
wait $pid72
rc72=$?
wait $pid10
rc10=$?
for host in qemu-7.2 qemu-10.0; do
	echo "==================== e2e on $host ($build/e2e-$host.log) ===================="
	cat "$build/e2e-$host.log"
done
echo "e2e: qemu-7.2 exit $rc72, qemu-10.0 exit $rc10, $((SECONDS - start)) s for both"
[ $rc72 = 0 ] && [ $rc10 = 0 ]
