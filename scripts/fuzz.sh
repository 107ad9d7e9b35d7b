#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/*_fuzz.cc) with clang, ASan and UBSan in build-fuzz/
# and runs each for SECONDS (default 60), seeded from testdata and a few hand-made
# inputs. A crash leaves its input in build-fuzz/crashes/ and fails the script; turn it
# into a unit test. Longer runs: scripts/fuzz.sh 3600, or run one target by hand:
#   build-fuzz/dest_core_fuzz build-fuzz/corpus/dest_core_fuzz -max_total_time=3600
# Also runs the unit tests under ASan/UBSan (skip with NO_UNIT=1).
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${1:-60}
# clang and libFuzzer's runtime (Debian: clang, libclang-rt-dev; clang alone lacks it).
if ! command -v clang++ >/dev/null ||
   ! ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang libclang-rt-dev
fi
cmake -S . -B build-fuzz -G Ninja -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
      -DGANGMIG_FUZZ=ON -DGANGMIG_ASAN=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
targets=$(cd fuzz && ls *_fuzz.cc | sed 's/\.cc$//')
cmake --build build-fuzz --target $targets captures $([ "${NO_UNIT:-0}" = 1 ] || echo gangmig_tests)
if [ "${NO_UNIT:-0}" != 1 ]; then
  # The unit tests under ASan/UBSan (the e2e scenarios need QEMU time, not sanitizers).
  ASAN_OPTIONS=detect_leaks=1 build-fuzz/gangmig_tests --gtest_brief=1
fi
mkdir -p build-fuzz/crashes
# Seeds: real QEMU streams for the parser; small valid messages for the others.
seed() { mkdir -p "build-fuzz/corpus/$1"; }
for t in $targets; do seed "$t"; done
find build-fuzz/testdata/captures -name '*.bin' -size -2M -exec cp {} build-fuzz/corpus/stream_parser_fuzz/ \;
printf '{"name":"web-1"}' >build-fuzz/corpus/control_fuzz/open
printf '{"event":"done","loaded_us":1,"resume_us":2,"bytes":3}' >build-fuzz/corpus/control_fuzz/done
printf '{"event":"progress","delivered":65536}' >build-fuzz/corpus/control_fuzz/progress
printf '\x04\x00\x07\x00\x00\x00\x00\x00' >build-fuzz/corpus/dest_core_fuzz/ref
printf '\x13\x00\x00\x00\x08\x07\x10\x00\x00\x00\x00\xff\xff\x14\x00\x00\x00\x00\x15\x00\x00\x00\x01' \
  >build-fuzz/corpus/cache_fuzz/summary-need-ack
status=0
for t in $targets; do
  echo "== $t: ${SECONDS_EACH} s"
  if ! build-fuzz/$t build-fuzz/corpus/$t -max_total_time="$SECONDS_EACH" -max_len=65536 \
       -rss_limit_mb=4096 -artifact_prefix=build-fuzz/crashes/$t- -print_final_stats=1 \
       2>build-fuzz/$t.log; then
    echo "$t FAILED: see build-fuzz/$t.log and build-fuzz/crashes/"; tail -30 build-fuzz/$t.log
    status=1
  else
    grep -E "stat::number_of_executed_units|cov:" build-fuzz/$t.log | tail -2
  fi
done
exit $status
