#!/bin/bash
# Builds every libFuzzer target in tests/fuzz/ into build/fuzz/ and runs
# each for FUZZ_SECONDS (default 30) from its seed corpus. Fails if any
# target fails to build or finds anything (a crash, a sanitizer report,
# a broken invariant, a hang, running out of memory); the input that did
# it is left in build/fuzz/artifacts/ to replay with
#   build/fuzz/fuzz_<name> build/fuzz/artifacts/<name>-crash-...
#
# The committed corpus is copied to a scratch directory first, so that
# what the fuzzer adds to it stays out of the work tree.
#
# Needs clang with libFuzzer (Debian: clang). Usage, from anywhere:
#   FUZZ_SECONDS=60 bash tests/fuzz/run.sh [target...]
set -euo pipefail
cd "$(dirname "$0")/../.."

FUZZ_SECONDS=${FUZZ_SECONDS:-30}
CLANG=${CLANG:-clang}
OUT=build/fuzz
# -O1 -g as libFuzzer's docs recommend; the same C dialect and warning
# bar as the meson build (gnu11, -Wall -Wextra, warnings are errors)
# shellcheck disable=SC2054 # the commas are -fsanitize's, not the array's
CFLAGS=(-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
        -g -O1 -std=gnu11 -Wall -Wextra -Werror -I.)

# Each target links one of the kernel's pure modules, named as the
# target is unless listed here; tests/pure-modules.txt has the sources
# of each (the same list the unit tests build from).
declare -A MODULE=([virtqueue_packed]=virtqueue)
declare -A SOURCES=()
while read -r name sources; do
	case "$name" in ''|'#'*) continue ;; esac
	SOURCES[${name%:}]=$sources
done < tests/pure-modules.txt
ALL=()
for f in tests/fuzz/fuzz_*.c; do
	t=${f#tests/fuzz/fuzz_}
	ALL+=("${t%.c}")
done
TARGETS=("${@:-${ALL[@]}}")

if ! command -v "$CLANG" >/dev/null; then
	echo "fuzz: $CLANG not found (Debian: apt-get install clang)" >&2
	exit 1
fi

mkdir -p "$OUT/artifacts" "$OUT/logs"
for t in "${TARGETS[@]}"; do
	[ -f "tests/fuzz/fuzz_$t.c" ] || { echo "fuzz: no target '$t' (have: ${ALL[*]})" >&2; exit 1; }
	module=${MODULE[$t]:-$t}
	[ -n "${SOURCES[$module]:-}" ] || { echo "fuzz: $t: no module '$module' in tests/pure-modules.txt" >&2; exit 1; }
	# shellcheck disable=SC2086 # the source lists are meant to split
	"$CLANG" "${CFLAGS[@]}" "tests/fuzz/fuzz_$t.c" ${SOURCES[$module]} -o "$OUT/fuzz_$t"
done

scratch=$(mktemp -d "${TMPDIR:-/tmp}/ballast-fuzz.XXXXXX")
trap 'rm -rf "$scratch"' EXIT

failed=()
summary=()
start=$SECONDS
for t in "${TARGETS[@]}"; do
	mkdir -p "$scratch/$t"
	cp tests/fuzz/corpus/"$t"/* "$scratch/$t/"
	log="$OUT/logs/$t.log"
	echo "fuzz: $t for ${FUZZ_SECONDS}s"
	# -timeout: one input taking 10 s is an endless loop, not slowness;
	# -rss_limit_mb: a leak or runaway allocation is a finding too
	rc=0
	"$OUT/fuzz_$t" -max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
		-artifact_prefix="$OUT/artifacts/$t-" "$scratch/$t" >"$log" 2>&1 || rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
	corpus=$(find "$scratch/$t" -type f | wc -l)
	if [ "$rc" -ne 0 ]; then
		failed+=("$t")
		summary+=("$(printf '%-13s FAILED (exit %d), log %s' "$t" "$rc" "$log")")
		echo "fuzz: $t FAILED; the end of $log:" >&2
		grep -v '^ *#[0-9]' "$log" | tail -n 40 >&2 || true
	else
		summary+=("$(printf '%-13s %12s execs %8s exec/s %5s corpus' "$t" "${execs:-?}" "${rate:-?}" "$corpus")")
	fi
done

echo
echo "fuzz: ${#TARGETS[@]} targets, ${FUZZ_SECONDS}s each, $((SECONDS - start))s of fuzzing"
printf '  %s\n' "${summary[@]}"
if [ "${#failed[@]}" -ne 0 ]; then
	echo "fuzz: findings in: ${failed[*]} (inputs in $OUT/artifacts/)" >&2
	exit 1
fi
