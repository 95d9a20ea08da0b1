#!/bin/sh
# fuzz/run.sh BUILD SECONDS TARGET...: run each libFuzzer target for SECONDS (fuzz/README.md).
# One line per target, "fuzz: TARGET execs=N crashes=N"; exit status 1 if any crashed.
# New inputs go to BUILD/corpus/TARGET (the seeds in fuzz/corpus/TARGET stay as they are),
# crash artifacts to BUILD/crashes/TARGET/ (emptied first), libFuzzer's log to BUILD/logs/.
set -u
build=$1
seconds=$2
shift 2
status=0
for t in "$@"; do
	crashes=$build/crashes/$t
	log=$build/logs/$t.log
	rm -rf "$crashes"
	mkdir -p "$crashes" "$build/corpus/$t" "$build/logs" "fuzz/corpus/$t"
	dict=
	[ -f "fuzz/$t.dict" ] && dict=-dict=fuzz/$t.dict
	# -timeout: an input that takes 10 s is a loop, and a crash (timeout- artifact).
	"$build/$t" -max_total_time="$seconds" -timeout=10 -print_final_stats=1 \
		-artifact_prefix="$crashes/" $dict "$build/corpus/$t" "fuzz/corpus/$t" >"$log" 2>&1
	rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	[ -n "$execs" ] || execs=$(sed -n 's/^#\([0-9][0-9]*\).*/\1/p' "$log" | tail -n 1)
	n=$(find "$crashes" -type f | wc -l)
	[ "$rc" -ne 0 ] && [ "$n" -eq 0 ] && n=1
	echo "fuzz: $t execs=${execs:-0} crashes=$n"
	if [ "$n" -ne 0 ]; then
		echo "fuzz: $t: see $log and $crashes/" >&2
		status=1
	fi
done
exit $status
