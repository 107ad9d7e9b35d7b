#!/usr/bin/env python3
"""Count identical 4 KiB pages across guest RAM files (e.g. /dev/shm/*.ram).

Usage: page-share.py RAMFILE [RAMFILE...]

For every file: pages, zero pages, distinct non-zero pages.  Across all
files: non-zero pages in total, distinct non-zero contents, and how many
non-zero pages a content-deduplicating store would not need to send/keep.
"""
import hashlib
import sys

PAGE = 4096
ZERO = bytes(PAGE)


def scan(path):
    counts = {}
    pages = zero = 0
    with open(path, "rb") as f:
        while True:
            buf = f.read(PAGE * 256)
            if not buf:
                break
            for off in range(0, len(buf), PAGE):
                pg = buf[off:off + PAGE]
                pages += 1
                if pg == ZERO or len(pg) < PAGE and not pg.strip(b"\0"):
                    zero += 1
                    continue
                h = hashlib.sha256(pg).digest()
                counts[h] = counts.get(h, 0) + 1
    return pages, zero, counts


def main(paths):
    if not paths:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    per = []
    for p in paths:
        pages, zero, counts = scan(p)
        per.append((p, pages, zero, counts))
        nz = pages - zero
        print(f"{p}: pages={pages} zero={zero} nonzero={nz} distinct_nonzero={len(counts)}")
    union = {}
    in_files = {}
    for _, _, _, counts in per:
        for h, c in counts.items():
            union[h] = union.get(h, 0) + c
            in_files[h] = in_files.get(h, 0) + 1
    total_nz = sum(union.values())
    distinct = len(union)
    common_all = sum(1 for h in in_files if in_files[h] == len(per))
    common_2 = sum(1 for h in in_files if in_files[h] >= 2)
    saved = total_nz - distinct
    pct = 100.0 * saved / total_nz if total_nz else 0.0
    print(f"all {len(per)} files: nonzero_pages={total_nz} distinct_nonzero={distinct} "
          f"dedup_saves={saved} ({pct:.1f}% of nonzero pages)")
    print(f"  contents present in every file={common_all} in >=2 files={common_2}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
